//! A request cut at span boundaries into parts that each fit a byte limit, from the sizes
//! its span buffers already know: nothing is encoded twice.

use super::Request;
use crate::otlp::wire::field_len;
use std::ops::Range;

/// Consecutive spans of one scope group, as the bytes they take in its buffer, less those
/// left out as too large among them: the stock encoder, given the spans that fit, writes
/// them as one scope group still.
#[derive(Debug, PartialEq, Eq)]
pub struct Piece {
    pub scope: usize,
    bytes: Range<usize>,
    /// The spans inside `bytes` left out, in order.
    gaps: Vec<Range<usize>>,
    /// The bytes its spans take: `bytes` less `gaps`.
    pub len: usize,
    pub spans: usize,
}

impl Piece {
    fn new(scope: usize) -> Self {
        Piece {
            scope,
            bytes: 0..0,
            gaps: Vec::new(),
            len: 0,
            spans: 0,
        }
    }

    /// Adds the span at `span`; any spans between it and the piece's last are left out.
    fn push(&mut self, span: Range<usize>) {
        if self.spans == 0 {
            self.bytes.start = span.start;
        } else if span.start > self.bytes.end {
            self.gaps.push(self.bytes.end..span.start);
        }
        self.bytes.end = span.end;
        self.len += span.len();
        self.spans += 1;
    }

    /// Where its spans are in the buffer: `bytes` less `gaps`, in order.
    pub fn ranges(&self) -> impl Iterator<Item = Range<usize>> + '_ {
        let starts = std::iter::once(self.bytes.start).chain(self.gaps.iter().map(|gap| gap.end));
        let ends = self.gaps.iter().map(|gap| gap.start);
        starts
            .zip(ends.chain(std::iter::once(self.bytes.end)))
            .map(|(start, end)| start..end)
    }
}

/// One resource group's pieces in a part.
#[derive(Debug, PartialEq, Eq)]
pub struct Entry {
    pub resource: usize,
    pub pieces: Vec<Piece>,
}

/// A part of a request: a request of its own, of `len` bytes once serialized.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Cut {
    pub entries: Vec<Entry>,
    pub spans: usize,
    pub len: usize,
}

/// A request cut to a byte limit: its parts, and the sizes of the spans left out because
/// each alone, with its resource and scope, is over the limit.
#[derive(Debug, Default)]
pub struct Split {
    pub cuts: Vec<Cut>,
    pub too_large: Vec<usize>,
}

/// The part being filled while a request is cut, and what its finished levels measure.
struct Cutter {
    limit: usize,
    split: Split,
    cut: Cut,
    /// Bytes of the part's finished resource entries.
    closed: usize,
    /// Bytes of the finished scope entries of the resource entry being filled.
    scopes_len: usize,
}

impl Cutter {
    /// Adds `piece` (of the scope whose framing takes `scope_fixed` bytes) to `resource`'s entry.
    fn close_piece(&mut self, resource: usize, scope_fixed: usize, piece: Piece) {
        if piece.spans == 0 {
            return;
        }
        self.scopes_len += field_len(2, scope_fixed + piece.len);
        self.cut.spans += piece.spans;
        match self.cut.entries.last_mut() {
            Some(entry) if entry.resource == resource => entry.pieces.push(piece),
            _ => self.cut.entries.push(Entry {
                resource,
                pieces: vec![piece],
            }),
        }
    }

    fn close_entry(&mut self, resource_fixed: usize) {
        if self.scopes_len > 0 {
            self.closed += field_len(1, resource_fixed + self.scopes_len);
            self.scopes_len = 0;
        }
    }

    fn close_cut(&mut self, resource_fixed: usize) {
        self.close_entry(resource_fixed);
        if self.cut.spans > 0 {
            let mut cut = std::mem::take(&mut self.cut);
            cut.len = std::mem::take(&mut self.closed);
            self.split.cuts.push(cut);
        }
        self.closed = 0;
    }
}

impl Request {
    /// The request cut into parts of at most `limit` bytes each, at span boundaries, in
    /// order; each part groups its spans under their resource and scope again. A span that
    /// would be over `limit` even in a part of its own is left out.
    pub fn split(&self, limit: usize) -> Split {
        let mut cutter = Cutter {
            limit,
            split: Split::default(),
            cut: Cut::default(),
            closed: 0,
            scopes_len: 0,
        };
        for (resource, group) in self.resources.iter().enumerate() {
            let resource_fixed = group.fixed_len();
            for (scope, spans) in group.scopes.iter().enumerate() {
                let scope_fixed = spans.fixed_len();
                let mut piece = Piece::new(scope);
                let mut start = 0;
                for &end in &spans.spans.ends {
                    let span = start..end;
                    start = end;
                    let size = span.len();
                    if field_len(1, resource_fixed + field_len(2, scope_fixed + size))
                        > cutter.limit
                    {
                        cutter.split.too_large.push(size);
                        continue;
                    }
                    let grown = resource_fixed
                        + cutter.scopes_len
                        + field_len(2, scope_fixed + piece.len + size);
                    if cutter.closed + field_len(1, grown) > cutter.limit {
                        let full = std::mem::replace(&mut piece, Piece::new(scope));
                        cutter.close_piece(resource, scope_fixed, full);
                        cutter.close_cut(resource_fixed);
                    }
                    piece.push(span);
                }
                cutter.close_piece(resource, scope_fixed, piece);
            }
            cutter.close_entry(resource_fixed);
        }
        cutter.close_cut(0);
        cutter.split
    }
}
