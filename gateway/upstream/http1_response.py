"""An upstream's answer as http1.Pool reads it: the head, then the body by its framing
(Content-Length, chunked, or until the server closes), decoded as it arrives, within the
pool's cap on the bytes an answer may take."""

import zlib

MAX_HEADER_BYTES = 64 * 1024
MAX_HEADERS = 100
MAX_LINE_BYTES = 4096  # a chunk-size or trailer line
RECV_BYTES = 65536
DECODE_STEP_BYTES = 1024 * 1024


class ProtocolError(Exception):
    """The server broke HTTP/1.1, or closed the connection in the middle of an answer."""


class ClosedBeforeAnswer(ProtocolError):
    """The server closed (or reset) the connection before sending a byte of its answer."""


class AnswerTooLarge(ProtocolError):
    """The answer is larger than the pool accepts, as read or as decoded."""


class Headers(dict):
    """Response headers by lower-case name; lookups ignore case. Repeated headers are
    joined with ", " as RFC 9110 allows."""

    def __getitem__(self, name):
        return dict.__getitem__(self, name.lower())

    def __contains__(self, name):
        return dict.__contains__(self, name.lower())

    def get(self, name, default=None):
        return dict.get(self, name.lower(), default)


class Response:
    """An answer whose head has been read. `data` is the body of a non-streamed answer;
    a streamed one is read with `blocks()` or `read()`. The connection goes back to the
    pool once the body has been read to its end; `close()` drops it before that."""

    def __init__(self, pool, origin, sock):
        self._pool, self._origin, self._sock = pool, origin, sock
        self._buffer = b""
        self._received = 0  # bytes read from the connection, head included
        self.data = None
        while True:
            self.version, self.status, self.headers = self._read_head()
            if self.status >= 200:
                break
            if self.status == 101:
                raise ProtocolError("the server switched protocols")
            # 1xx (100 Continue, 103 Early Hints): an interim answer, the real one follows
        connection = self.headers.get("connection", "").lower()
        if self.version == "HTTP/1.1":
            self.keep_alive = "close" not in connection
        else:
            self.keep_alive = "keep-alive" in connection
        transfer = self.headers.get("transfer-encoding", "").lower()
        self.chunked = False
        self._length = None
        if self.status in (204, 304):
            self._length = 0
        elif transfer:
            if transfer != "chunked":
                raise ProtocolError("a transfer encoding other than chunked")
            self.chunked = True
        elif "content-length" in self.headers:
            values = {v.strip() for v in self.headers["content-length"].split(",")}
            value = values.pop()
            if values or not value.isdigit():
                raise ProtocolError("a malformed Content-Length")
            self._length = int(value)
        else:
            self.keep_alive = False  # the body ends when the server closes the connection
        self._blocks = None

    def _recv(self) -> bytes:
        data = self._recv_or_end()
        if data:
            return data
        if not self._received:
            raise ClosedBeforeAnswer("the server closed the connection without answering")
        raise ProtocolError("the server closed the connection in the middle of an answer")

    def _recv_or_end(self) -> bytes:
        """The next bytes from the connection, b"" once the server has closed it."""
        try:
            data = self._sock.recv(RECV_BYTES)
        except ConnectionError:
            if not self._received:
                raise ClosedBeforeAnswer("the server reset the connection without answering")
            raise
        self._received += len(data)
        if self._received > self._pool.max_answer_bytes:
            raise AnswerTooLarge(f"the answer is over {self._pool.max_answer_bytes} bytes")
        return data

    def _read_head(self):
        buffer = self._buffer
        start = 0
        while (end := buffer.find(b"\r\n\r\n", start)) == -1:
            if len(buffer) > MAX_HEADER_BYTES:
                raise ProtocolError("the answer's headers are too large")
            start = max(0, len(buffer) - 3)
            buffer += self._recv()
        if end > MAX_HEADER_BYTES:
            raise ProtocolError("the answer's headers are too large")
        self._buffer = buffer[end + 4:]
        lines = buffer[:end].decode("latin-1").split("\r\n")
        if len(lines) > MAX_HEADERS + 1:
            raise ProtocolError("the answer has too many headers")
        version, _, rest = lines[0].partition(" ")
        code = rest[:3]
        if version not in ("HTTP/1.1", "HTTP/1.0") or not (code.isdigit() and rest[3:4] in ("", " ")):
            raise ProtocolError("a malformed status line")
        headers = Headers()
        for line in lines[1:]:
            name, colon, value = line.partition(":")
            if not colon or not name or name != name.strip() or name[0] in " \t":
                raise ProtocolError("a malformed header line")
            name, value = name.lower(), value.strip(" \t")
            headers[name] = f"{dict.__getitem__(headers, name)}, {value}" if dict.__contains__(headers, name) else value
        return version, int(code), headers

    def blocks(self):
        """The body's bytes as they arrive, decoded (gzip, deflate), each block as soon as it
        is read."""
        if self._blocks is None:
            if self.chunked:
                blocks = self._chunked()
            elif self._length is not None:
                if self._length > self._pool.max_answer_bytes:
                    raise AnswerTooLarge(f"the answer announces {self._length} bytes")
                blocks = self._sized(self._length)
            else:
                blocks = self._until_close()
            encoding = self.headers.get("content-encoding", "").strip().lower()
            if encoding not in ("", "identity"):
                blocks = _decoded(blocks, encoding, self._pool.max_answer_bytes)
            self._blocks = blocks
        return self._blocks

    def _sized(self, remaining: int):
        data, self._buffer = self._buffer, b""
        if len(data) >= remaining:
            self._done(data[remaining:])
            if remaining:
                yield data[:remaining]
            return
        while True:
            if data:
                remaining -= len(data)
                if remaining <= 0:
                    break
                yield data
            data = self._recv()
        self._done(data[len(data) + remaining:])
        yield data[:len(data) + remaining]

    def _chunked(self):
        buffer, self._buffer, pos = self._buffer, b"", 0
        out = []
        while True:
            while (eol := buffer.find(b"\r\n", pos)) == -1:
                if len(buffer) - pos > MAX_LINE_BYTES:
                    raise ProtocolError("a malformed chunk")
                if out:
                    yield b"".join(out)
                    out = []
                buffer, pos = buffer[pos:] + self._recv(), 0
            size_text = buffer[pos:eol].split(b";", 1)[0].strip()
            if not size_text or size_text.strip(b"0123456789abcdefABCDEF"):
                raise ProtocolError("a malformed chunk size")
            size, pos = int(size_text, 16), eol + 2
            if size == 0:
                break
            while size:
                if pos == len(buffer):
                    if out:
                        yield b"".join(out)
                        out = []
                    buffer, pos = self._recv(), 0
                piece = buffer[pos:pos + size]
                out.append(piece)
                pos += len(piece)
                size -= len(piece)
            while len(buffer) - pos < 2:
                if out:
                    yield b"".join(out)
                    out = []
                buffer, pos = buffer[pos:] + self._recv(), 0
            if buffer[pos:pos + 2] != b"\r\n":
                raise ProtocolError("a chunk longer than it said")
            pos += 2
        while True:  # trailers, then the empty line that ends the body
            while (eol := buffer.find(b"\r\n", pos)) == -1:
                if len(buffer) - pos > MAX_LINE_BYTES:
                    raise ProtocolError("a malformed trailer")
                if out:
                    yield b"".join(out)
                    out = []
                buffer, pos = buffer[pos:] + self._recv(), 0
            empty, pos = eol == pos, eol + 2
            if empty:
                break
        self._done(buffer[pos:])  # before the last yield: a caller that stops here has still released it
        if out:
            yield b"".join(out)

    def _until_close(self):
        data, self._buffer = self._buffer, b""
        while True:
            if data:
                yield data
            data = self._recv_or_end()
            if not data:
                self.close()
                return

    def _done(self, leftover: bytes) -> None:
        """The body has been read to its end: the connection is reused if nothing follows it
        and the server did not say it closes it."""
        sock, self._sock = self._sock, None
        if self.keep_alive and not leftover:
            self._pool._release(self._origin, sock)
        else:
            sock.close()

    def socket(self):
        """The connection while its body is still being read, else None."""
        return self._sock

    def read(self, limit: int | None = None) -> bytes:
        """The body, decoded; only its first `limit` bytes when given, which drops the
        connection if the body is longer."""
        if self.data is not None:
            return self.data if limit is None else self.data[:limit]
        pieces, size = [], 0
        try:
            for block in self.blocks():
                pieces.append(block)
                size += len(block)
                if limit is not None and size >= limit:
                    break
        except BaseException:
            pieces.clear()  # the traceback keeps this frame alive while the caller retries
            raise
        finally:
            self.close()
        body = b"".join(pieces)
        return body if limit is None else body[:limit]

    def close(self) -> None:
        """Drop the connection unless the body was read to its end (it is then pooled)."""
        if self._sock is not None:
            sock, self._sock = self._sock, None
            sock.close()


def _decoded(blocks, encoding: str, limit: int):
    """Decode a body as it arrives, refusing it once it would decode to over `limit` bytes
    (a few hundred kilobytes of gzip can hold gigabytes). Inflated DECODE_STEP_BYTES at a
    time, so a bomb costs the cap and not a multiple of it in zlib's growing buffers."""
    decoder, produced = None, 0
    for block in blocks:
        if decoder is None:
            decoder = _decoder(encoding, block)
        while True:
            step = min(limit - produced + 1, DECODE_STEP_BYTES)  # never more than a byte past the cap
            try:
                out = decoder.decompress(block, step)
            except zlib.error:
                raise ProtocolError("a body that does not decode")
            produced += len(out)
            if produced > limit:
                raise AnswerTooLarge(f"the answer decodes to over {limit} bytes")
            if out:
                yield out
            block = decoder.unconsumed_tail
            if not block and len(out) < step:
                break  # this block is decoded; a full step may have left output pending
    if decoder is not None and (rest := decoder.flush()):
        if produced + len(rest) > limit:
            raise AnswerTooLarge(f"the answer decodes to over {limit} bytes")
        yield rest


def _decoder(encoding: str, first_block: bytes):
    if encoding in ("gzip", "x-gzip"):
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    if encoding == "deflate":
        # RFC 9110's deflate is zlib-wrapped, but some servers send it raw.
        return zlib.decompressobj(zlib.MAX_WBITS if first_block[0] & 0x0F == 8 else -zlib.MAX_WBITS)
    raise ProtocolError(f"an unsupported Content-Encoding: {encoding[:32]}")
