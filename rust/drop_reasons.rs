//! The one table of drop reasons: why an item left the pipeline without being exported.
//!
//! Adding a reason is a row here (its name in `stats().dropped`, the words of its warning, the
//! stage that drops it), the place that counts it, and the README's list: `stats()`, the drop
//! warnings and the self-metrics read it from `_core.DROP_REASONS`.

/// Why a span left the pipeline without being exported.
///
/// This enum and [`DropReason::about`] are the one table of drop reasons: the native module
/// publishes it as `DROP_REASONS`, and Python's warning words and metric attributes are read
/// from there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropReason {
    /// The queue was full: the policy evicted a queued span or refused a new one.
    QueueFull = 0,
    /// The processor was shut down before the span could be exported.
    Shutdown = 1,
    /// The exporter returned failure, raised, or returned something that is not a result.
    ExportFailed = 2,
    /// A fork left spans in a queue the child cannot tell apart from its parent's.
    Fork = 3,
    /// The exporter's encoder left the span out of its request (a string that is not valid
    /// UTF-8, a field it cannot read); the rest of the batch went on.
    Unencodable = 4,
    /// Emitted on one of the lane's own export threads (the exporter's logging, bridged back
    /// into the processor): queueing it would feed the exporter its own output, forever.
    ExportThread = 5,
    /// The span alone, in a request of its own, was over the exporter's request size limit
    /// (`max_export_batch_bytes`): no backend under that limit would take it.
    TooLarge = 6,
}

/// Where in its life a span was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Straight out of the queue. The stock processor counts such a span as processed with
    /// this `error.type` in its `otel.sdk.processor.span.processed` metric.
    Queue { error_type: &'static str },
    /// When its export ended: it was handed to the exporter, which the stock processor counts
    /// as processed without an error.
    Export,
}

/// What is said about a drop reason: its key in `stats().dropped`, the words of the drop
/// warning, and the stage it drops spans at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct About {
    pub name: &'static str,
    pub description: &'static str,
    pub stage: Stage,
}

impl DropReason {
    pub const ALL: [DropReason; 7] = [
        DropReason::QueueFull,
        DropReason::Shutdown,
        DropReason::ExportFailed,
        DropReason::Fork,
        DropReason::Unencodable,
        DropReason::ExportThread,
        DropReason::TooLarge,
    ];

    pub const fn about(self) -> About {
        let (name, description, stage) = match self {
            Self::QueueFull => (
                "queue_full",
                "queue full",
                Stage::Queue {
                    error_type: "queue_full",
                },
            ),
            Self::Shutdown => (
                "shutdown",
                "shut down",
                Stage::Queue {
                    error_type: "already_shutdown",
                },
            ),
            Self::ExportFailed => ("export_failed", "export failed", Stage::Export),
            Self::Fork => (
                "fork",
                "inherited across a fork",
                Stage::Queue { error_type: "fork" },
            ),
            Self::Unencodable => ("unencodable", "could not be encoded", Stage::Export),
            Self::ExportThread => (
                "export_thread",
                "emitted on its own export thread",
                Stage::Queue {
                    error_type: "export_thread",
                },
            ),
            Self::TooLarge => ("too_large", "over the request size limit", Stage::Export),
        };
        About {
            name,
            description,
            stage,
        }
    }

    pub const fn name(self) -> &'static str {
        self.about().name
    }

    /// Reasons that take a span straight out of the queue (the other ones end an export).
    pub(crate) const fn leaves_queue(self) -> bool {
        matches!(self.about().stage, Stage::Queue { .. })
    }
}

pub const REASONS: usize = DropReason::ALL.len();
