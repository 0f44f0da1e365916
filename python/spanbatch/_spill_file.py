"""A spill file's bytes: a header (magic, version, item count, length, crc32) and the payload.

What ``spanbatch._spill`` writes and reads back; a file that does not check out raises
``CorruptFile`` and is moved aside, never replayed. A newer version's file is left for it.
"""

from __future__ import annotations

import os
import struct
import zlib

MAGIC = b"SBSPILL\x00"
VERSION = 1
# magic, version, flags (none yet), span count, payload length, crc32 of the payload
HEADER = struct.Struct("<8sHHIQI")


class CorruptFile(Exception):
    """A spill file whose header or checksum does not check out."""


class NewerVersion(Exception):
    """A spill file written by a newer spanbatch: left for it."""


def encode(payload: bytes, spans: int) -> bytes:
    return HEADER.pack(MAGIC, VERSION, 0, spans, len(payload), zlib.crc32(payload)) + payload


def decode(data: bytes) -> tuple[bytes, int]:
    """The payload and span count of a spill file's bytes; ``CorruptFile`` if they do not check out."""
    if len(data) < HEADER.size:
        raise CorruptFile(f"{len(data)} bytes, shorter than a header")
    magic, version, _flags, spans, length, crc = HEADER.unpack_from(data)
    if magic != MAGIC:
        raise CorruptFile("not a spill file")
    if version > VERSION:
        raise NewerVersion(version)
    payload = data[HEADER.size :]
    if len(payload) != length:
        raise CorruptFile(f"{len(payload)} bytes of payload where the header says {length}")
    if zlib.crc32(payload) != crc:
        raise CorruptFile("checksum mismatch")
    return payload, spans


def read_file(fd: int) -> tuple[bytes, int]:
    """``decode`` of an open spill file, its header checked against the file's size before the payload is read: a
    large file that is no spill file (planted, or another program's) is never read whole."""
    header = os.pread(fd, HEADER.size, 0)
    size = os.fstat(fd).st_size
    if len(header) < HEADER.size:
        raise CorruptFile(f"{size} bytes, shorter than a header")
    magic, version, _flags, _spans, length, _crc = HEADER.unpack(header)
    if magic != MAGIC:
        raise CorruptFile("not a spill file")
    if version <= VERSION and size - HEADER.size != length:
        raise CorruptFile(f"{size - HEADER.size} bytes of payload where the header says {length}")
    return decode(read_all(fd))


def read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 1 << 20):
        chunks.append(chunk)
    return b"".join(chunks)


def span_count(fd: int) -> int | None:
    """The span count in the header of a whole spill file, without reading its payload; None if the file is
    not one (garbage, empty, torn: its length is not the header's), so that nobody counts spans it never had."""
    try:
        header = os.pread(fd, HEADER.size, 0)
        size = os.fstat(fd).st_size
    except OSError:
        return None
    if len(header) < HEADER.size:
        return None
    magic, version, _flags, spans, length, _crc = HEADER.unpack(header)
    if magic != MAGIC or (version <= VERSION and size != HEADER.size + length):
        return None
    return int(spans)  # a newer version's file is evicted counting the spans its header says
