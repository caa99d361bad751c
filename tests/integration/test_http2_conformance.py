"""HTTP/2 conformance of the ingress (protocol=http, ALPN h2), case by case, organised by
RFC 9113 and RFC 7541 section, over the ground the public h2spec suite covers; and each
abuse class of issue 11 as a bounded loopback test. Frames are made by hand (hyperframe,
hpack: python3-hyperframe and python3-hpack with Debian's /usr/bin/python3), so every
case sends exactly the bytes it names, including the ones real clients never send.

Each case expects what the RFC says: a connection error (GOAWAY with the code, then the
close), a stream error (RST_STREAM with the code), or a normal answer. Where nghttp2
answers differently from the RFC's wording, docs/http2.md says so and the case pins what
it does (marked "nghttp2:")."""

import socket
import ssl
import struct
import time

import harness
from harness import LOOPBACK, SERVICE

try:
    import hpack
    from hyperframe.frame import (ContinuationFrame, DataFrame, Frame, GoAwayFrame,
                                  HeadersFrame, PingFrame, PriorityFrame, RstStreamFrame,
                                  SettingsFrame, WindowUpdateFrame)
except ImportError:
    hpack = None

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

NO_ERROR, PROTOCOL_ERROR, INTERNAL_ERROR, FLOW_CONTROL_ERROR = 0, 1, 2, 3
STREAM_CLOSED, FRAME_SIZE_ERROR, REFUSED_STREAM, CANCEL = 5, 6, 7, 8
COMPRESSION_ERROR, ENHANCE_YOUR_CALM = 9, 11


def raw_frame(kind, flags, stream, payload):
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + \
        struct.pack(">I", stream) + payload


class Conn:
    """A TLS connection with ALPN h2 that speaks raw frames."""

    def __init__(self, port, ca, preface=True):
        raw = harness.connect(port)
        context = harness.tls_client_context(ca)
        context.set_alpn_protocols(["h2"])
        self.sock = context.wrap_socket(raw, server_hostname=SERVICE)
        assert self.sock.selected_alpn_protocol() == "h2"
        self.encoder = hpack.Encoder()
        self.decoder = hpack.Decoder()
        self.buf = b""
        self.frames = []
        self.closed = False
        if preface:
            self.send(PREFACE + SettingsFrame(0).serialize())

    def send(self, data):
        try:
            self.sock.sendall(data)
        except OSError:
            self.closed = True

    def frame(self, f):
        self.send(f.serialize())

    def block(self, headers):
        return self.encoder.encode(headers)

    def request_headers(self, path="/", method="GET", extra=()):
        return [(":method", method), (":scheme", "https"), (":authority", SERVICE),
                (":path", path), *extra]

    def headers_frame(self, stream, headers, end_stream=True, end_headers=True):
        f = HeadersFrame(stream)
        f.data = self.block(headers) if isinstance(headers, list) else headers
        if end_stream:
            f.flags.add("END_STREAM")
        if end_headers:
            f.flags.add("END_HEADERS")
        return f

    def headers(self, stream, headers, end_stream=True, end_headers=True):
        self.frame(self.headers_frame(stream, headers, end_stream, end_headers))

    def read(self, timeout):
        """Reads frames until timeout or close; returns the new ones."""
        deadline = time.monotonic() + timeout
        new = []
        while time.monotonic() < deadline and not self.closed:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                data = self.sock.recv(65536)
            except (socket.timeout, TimeoutError):
                break
            except (OSError, ssl.SSLError):
                self.closed = True
                break
            if not data:
                self.closed = True
                break
            self.buf += data
            while len(self.buf) >= 9:
                length = int.from_bytes(self.buf[:3], "big")
                if len(self.buf) < 9 + length:
                    break
                f, length = Frame.parse_frame_header(memoryview(self.buf[:9]))
                f.parse_body(memoryview(self.buf[9:9 + length]))
                self.buf = self.buf[9 + length:]
                if isinstance(f, HeadersFrame) and "END_HEADERS" in f.flags:
                    # HPACK is stateful: every block is decoded in the order it came, or
                    # a later one can refer to entries the decoder never saw.
                    try:
                        f.decoded = self.decoder.decode(f.data)
                    except hpack.HPACKError as e:
                        f.decoded = e
                if isinstance(f, SettingsFrame) and "ACK" not in f.flags:
                    ack = SettingsFrame(0)
                    ack.flags.add("ACK")
                    self.frame(ack)
                new.append(f)
                self.frames.append(f)
        return new

    def wait_for(self, predicate, timeout=5):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for f in self.frames:
                if predicate(f):
                    return f
            if self.closed:
                break
            self.read(0.1)
        for f in self.frames:
            if predicate(f):
                return f
        return None

    def goaway(self, timeout=5):
        return self.wait_for(lambda f: isinstance(f, GoAwayFrame), timeout)

    def rst(self, stream, timeout=5):
        return self.wait_for(lambda f: isinstance(f, RstStreamFrame) and f.stream_id == stream,
                             timeout)

    def status(self, stream, timeout=5):
        f = self.wait_for(lambda f: isinstance(f, HeadersFrame) and f.stream_id == stream,
                          timeout)
        if f is None:
            return None
        if isinstance(f.decoded, Exception):
            raise f.decoded
        return int(dict(f.decoded)[":status"])

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


class ConformanceCase(harness.PkiCase):
    def setUp(self):
        super().setUp()
        if hpack is None:
            harness.missing_python_package("python3-hyperframe")
        self.app = self.start_http_app()
        self.proc, self.port = self.start_ingress(self.app, self.cert, self.key,
                                                  options="protocol=http",
                                                  extra=list(self.extra_flags()))

    def extra_flags(self):
        return []

    def conn(self, **kwargs):
        c = Conn(self.port, self.ca, **kwargs)
        self.addCleanup(c.close)
        c.read(0.2)  # the server's SETTINGS (acknowledged)
        return c

    def assert_connection_error(self, c, code):
        g = c.goaway()
        self.assertIsNotNone(g, f"no GOAWAY; frames: {c.frames}\n{self.diag()}")
        self.assertEqual(g.error_code, code, g)
        c.read(2)
        self.assertTrue(c.closed, "the connection stays open after the connection error")

    def assert_stream_error(self, c, stream, code):
        r = c.rst(stream)
        self.assertIsNotNone(r, f"no RST_STREAM on {stream}; frames: {c.frames}")
        self.assertEqual(r.error_code, code, r)
        self.assert_still_serves(c)

    def assert_still_serves(self, c, stream=None):
        """The connection answers a good request on a fresh stream."""
        stream = stream or (max([f.stream_id for f in c.frames] + [0]) + 2) | 1
        c.headers(stream, c.request_headers("/still"))
        self.assertEqual(c.status(stream), 200, f"frames: {c.frames}")

    def assert_others_served(self):
        """Another client on its own connection is served meanwhile."""
        other = self.conn()
        other.headers(1, other.request_headers("/other"))
        self.assertEqual(other.status(1), 200)


class Rfc9113Section3And4(ConformanceCase):
    """3.4 the preface; 4.1-4.3 frame format, size and header compression."""

    def test_3_4_invalid_preface_closes(self):
        c = Conn(self.port, self.ca, preface=False)
        self.addCleanup(c.close)
        c.send(b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n" + SettingsFrame(0).serialize())
        c.read(3)
        self.assertTrue(c.closed)

    def test_4_1_unknown_frame_type_is_ignored(self):
        c = self.conn()
        c.send(raw_frame(0xfa, 0, 0, b"hello"))
        ping = PingFrame(0, b"12345678")
        c.frame(ping)
        ack = c.wait_for(lambda f: isinstance(f, PingFrame) and "ACK" in f.flags)
        self.assertIsNotNone(ack)
        self.assertEqual(ack.opaque_data, b"12345678")

    def test_4_1_unknown_flags_are_ignored(self):
        c = self.conn()
        c.send(raw_frame(6, 0x16, 0, b"abcdefgh"))  # PING with undefined flags
        self.assertIsNotNone(c.wait_for(lambda f: isinstance(f, PingFrame) and "ACK" in f.flags))

    def test_4_2_data_over_max_frame_size(self):
        c = self.conn()
        c.headers(1, c.request_headers("/", "POST"), end_stream=False)
        c.send(raw_frame(0, 1, 1, b"x" * 16385))
        self.assert_connection_error(c, FRAME_SIZE_ERROR)

    def test_4_3_invalid_header_block_is_a_compression_error(self):
        c = self.conn()
        c.headers(1, b"\xff\xff\xff\xff\xff\xff")  # an index far beyond any table
        self.assert_connection_error(c, COMPRESSION_ERROR)


class Rfc9113Section5(ConformanceCase):
    """5.1 stream states and identifiers, 5.1.2 concurrency, 5.4 error handling, 5.5
    extensions."""

    def test_5_1_data_on_idle_stream(self):
        c = self.conn()
        c.frame(DataFrame(1, b"x", flags=["END_STREAM"]))
        self.assert_connection_error(c, PROTOCOL_ERROR)

    def test_5_1_headers_on_half_closed_remote_stream(self):
        c = self.conn()
        # One write, so both arrive in one record: sent apart, the second could come
        # after the response closed the stream, and a HEADERS on a stream that is
        # closed and forgotten is ignored (RFC 9113 5.1, "closed").
        c.send(c.headers_frame(1, c.request_headers()).serialize()  # half-closed (remote)
               + c.headers_frame(1, [("x-late", "1")]).serialize())
        f = c.wait_for(lambda f: (isinstance(f, RstStreamFrame) and f.stream_id == 1)
                       or isinstance(f, GoAwayFrame))
        self.assertIsNotNone(f, c.frames)
        self.assertEqual(f.error_code, STREAM_CLOSED)

    def test_5_1_rst_stream_on_idle_stream(self):
        c = self.conn()
        c.frame(RstStreamFrame(1, error_code=CANCEL))
        self.assert_connection_error(c, PROTOCOL_ERROR)

    def test_5_1_1_even_stream_id(self):
        c = self.conn()
        c.headers(2, c.request_headers())
        self.assert_connection_error(c, PROTOCOL_ERROR)

    def test_5_1_1_decreasing_stream_id(self):
        """nghttp2: a HEADERS on a lower, never used stream id is taken as a frame on a
        closed stream (5.1.1 closed it implicitly) and ignored, not a connection error as
        h2spec expects; nothing reaches the app and the connection goes on."""
        c = self.conn()
        c.headers(5, c.request_headers())
        self.assertEqual(c.status(5), 200)
        c.headers(3, c.request_headers("/lower"))
        self.assertIsNone(c.status(3, timeout=1))
        self.assertIsNone(c.goaway(timeout=0.1))
        self.assert_still_serves(c, 7)

    def test_5_1_2_streams_over_the_limit_before_the_ack_are_refused(self):
        c = Conn(self.port, self.ca, preface=False)
        self.addCleanup(c.close)
        # Preface and 101 streams in one go, before the server's SETTINGS is acknowledged.
        blocks = b"".join(HeadersFrame(2 * i + 1, c.block(c.request_headers(f"/{i}")),
                                       flags=["END_STREAM", "END_HEADERS"]).serialize()
                          for i in range(101))
        c.send(PREFACE + SettingsFrame(0).serialize() + blocks)
        r = c.wait_for(lambda f: isinstance(f, RstStreamFrame) and f.error_code == REFUSED_STREAM,
                       timeout=10)
        self.assertIsNotNone(r, f"frames: {c.frames[-5:]}")
        self.assertGreater(self.proc.stat("ringside_listener_http2_refused_streams_total"), 0)

    def test_5_4_1_connection_closes_after_goaway(self):
        c = self.conn()
        c.send(raw_frame(0, 0, 0, b"x"))  # DATA on stream 0
        self.assert_connection_error(c, PROTOCOL_ERROR)

    def test_5_5_unknown_frame_between_streams(self):
        c = self.conn()
        c.send(raw_frame(0x21, 0, 1, b"\x00" * 4))
        c.headers(1, c.request_headers())
        self.assertEqual(c.status(1), 200)


class Rfc9113Section6(ConformanceCase):
    """6.1-6.10: every frame type's rules."""

    def test_6_1_data_on_stream_zero(self):
        c = self.conn()
        c.send(raw_frame(0, 1, 0, b"x"))
        self.assert_connection_error(c, PROTOCOL_ERROR)

    def test_6_1_padding_longer_than_payload(self):
        c = self.conn()
        c.headers(1, c.request_headers("/", "POST"), end_stream=False)
        c.send(raw_frame(0, 0x09, 1, b"\x10abc"))  # PADDED, pad length 16 > what follows
        self.assert_connection_error(c, PROTOCOL_ERROR)

    def test_6_2_headers_on_stream_zero(self):
        c = self.conn()
        c.send(raw_frame(1, 0x05, 0, c.block(c.request_headers())))
        self.assert_connection_error(c, PROTOCOL_ERROR)

    def test_6_3_priority_on_stream_zero(self):
        """nghttp2: with SETTINGS_NO_RFC7540_PRIORITIES sent (RFC 9218), PRIORITY frames are
        not interpreted, so one on stream 0 is ignored (RFC 9113 5.3.2 deprecates them)."""
        c = self.conn()
        c.send(raw_frame(2, 0, 0, b"\x00\x00\x00\x01\x10"))
        self.assertIsNone(c.goaway(timeout=0.5))
        self.assert_still_serves(c, 1)

    def test_6_3_priority_with_wrong_length(self):
        c = self.conn()
        c.send(raw_frame(2, 0, 1, b"\x00\x00\x00\x03"))
        f = c.wait_for(lambda f: isinstance(f, (RstStreamFrame, GoAwayFrame)))
        self.assertIsNotNone(f)
        self.assertEqual(f.error_code, FRAME_SIZE_ERROR)

    def test_6_4_rst_stream_on_stream_zero(self):
        c = self.conn()
        c.send(raw_frame(3, 0, 0, b"\x00\x00\x00\x08"))
        self.assert_connection_error(c, PROTOCOL_ERROR)

    def test_6_4_rst_stream_with_wrong_length(self):
        c = self.conn()
        c.headers(1, c.request_headers(), end_stream=False)
        c.send(raw_frame(3, 0, 1, b"\x00\x00\x00\x08\x00"))
        self.assert_connection_error(c, FRAME_SIZE_ERROR)

    def test_6_5_settings_on_a_stream(self):
        c = self.conn()
        c.send(raw_frame(4, 0, 1, b""))
        self.assert_connection_error(c, PROTOCOL_ERROR)

    def test_6_5_settings_ack_with_payload(self):
        c = self.conn()
        c.send(raw_frame(4, 1, 0, b"\x00\x03\x00\x00\x00\x64"))
        self.assert_connection_error(c, FRAME_SIZE_ERROR)

    def test_6_5_settings_length_not_a_multiple_of_6(self):
        c = self.conn()
        c.send(raw_frame(4, 0, 0, b"\x00\x03\x00\x00\x00"))
        self.assert_connection_error(c, FRAME_SIZE_ERROR)

    def test_6_5_2_enable_push_other_than_0_or_1(self):
        c = self.conn()
        c.send(raw_frame(4, 0, 0, b"\x00\x02\x00\x00\x00\x02"))
        self.assert_connection_error(c, PROTOCOL_ERROR)

    def test_6_5_2_initial_window_size_over_the_maximum(self):
        c = self.conn()
        c.send(raw_frame(4, 0, 0, b"\x00\x04\x80\x00\x00\x00"))
        self.assert_connection_error(c, FLOW_CONTROL_ERROR)

    def test_6_5_2_max_frame_size_below_the_minimum(self):
        c = self.conn()
        c.send(raw_frame(4, 0, 0, b"\x00\x05\x00\x00\x3f\xff"))
        self.assert_connection_error(c, PROTOCOL_ERROR)

    def test_6_5_2_unknown_setting_is_ignored(self):
        c = self.conn()
        c.send(raw_frame(4, 0, 0, b"\x00\xff\x00\x00\x00\x01"))
        self.assertIsNotNone(c.wait_for(lambda f: isinstance(f, SettingsFrame)
                                        and "ACK" in f.flags))
        self.assert_still_serves(c, 1)

    def test_6_7_ping_is_answered_with_its_payload(self):
        c = self.conn()
        c.frame(PingFrame(0, b"ringside"))
        ack = c.wait_for(lambda f: isinstance(f, PingFrame) and "ACK" in f.flags)
        self.assertEqual(ack.opaque_data, b"ringside")

    def test_6_7_ping_on_a_stream(self):
        c = self.conn()
        c.send(raw_frame(6, 0, 1, b"12345678"))
        self.assert_connection_error(c, PROTOCOL_ERROR)

    def test_6_7_ping_with_wrong_length(self):
        c = self.conn()
        c.send(raw_frame(6, 0, 0, b"1234567"))
        self.assert_connection_error(c, FRAME_SIZE_ERROR)

    def test_6_8_goaway_on_a_stream(self):
        c = self.conn()
        c.send(raw_frame(7, 0, 1, b"\x00\x00\x00\x00\x00\x00\x00\x00"))
        self.assert_connection_error(c, PROTOCOL_ERROR)

    def test_6_9_window_update_of_zero_on_the_connection(self):
        c = self.conn()
        c.send(raw_frame(8, 0, 0, b"\x00\x00\x00\x00"))
        self.assert_connection_error(c, PROTOCOL_ERROR)

    def test_6_9_window_update_of_zero_on_a_stream(self):
        """nghttp2: a connection error (GOAWAY PROTOCOL_ERROR), stricter than RFC 9113's
        stream error."""
        c = self.conn()
        c.headers(1, c.request_headers("/", "POST"), end_stream=False)
        c.send(raw_frame(8, 0, 1, b"\x00\x00\x00\x00"))
        self.assert_connection_error(c, PROTOCOL_ERROR)

    def test_6_9_window_update_with_wrong_length(self):
        c = self.conn()
        c.send(raw_frame(8, 0, 0, b"\x00\x00\x00\x01\x00"))
        self.assert_connection_error(c, FRAME_SIZE_ERROR)

    def test_6_9_1_connection_window_overflow(self):
        c = self.conn()
        c.frame(WindowUpdateFrame(0, window_increment=2 ** 31 - 1))
        c.frame(WindowUpdateFrame(0, window_increment=2 ** 31 - 1))
        self.assert_connection_error(c, FLOW_CONTROL_ERROR)

    def test_6_9_1_stream_window_overflow(self):
        c = self.conn()
        c.headers(1, c.request_headers("/", "POST"), end_stream=False)
        c.frame(WindowUpdateFrame(1, window_increment=2 ** 31 - 1))
        self.assert_stream_error(c, 1, FLOW_CONTROL_ERROR)

    def test_6_10_continuation_without_headers(self):
        c = self.conn()
        c.send(raw_frame(9, 0x04, 1, c.block(c.request_headers())))
        self.assert_connection_error(c, PROTOCOL_ERROR)

    def test_6_10_frame_between_headers_and_continuation(self):
        c = self.conn()
        block = c.block(c.request_headers())
        c.send(raw_frame(1, 0x01, 1, block[:2]))  # HEADERS without END_HEADERS
        c.send(raw_frame(0, 0, 1, b"x"))
        self.assert_connection_error(c, PROTOCOL_ERROR)

    def test_6_10_headers_split_over_continuations(self):
        c = self.conn()
        block = c.block(c.request_headers("/split"))
        c.send(raw_frame(1, 0x01, 1, block[:3]) + raw_frame(9, 0, 1, block[3:5])
               + raw_frame(9, 0x04, 1, block[5:]))
        self.assertEqual(c.status(1), 200)


class Rfc9113Section8(ConformanceCase):
    """8.1.1 malformed messages, 8.2 fields, 8.3 control data: stream errors; nothing
    reaches the app, and the connection goes on."""

    def malformed(self, headers):
        c = self.conn()
        c.headers(1, headers)
        self.assert_stream_error(c, 1, PROTOCOL_ERROR)

    def test_8_2_1_uppercase_field_name(self):
        self.malformed(self.conn().request_headers(extra=[("X-Upper", "1")]))

    def test_8_2_1_field_value_with_newline(self):
        self.malformed(self.conn().request_headers(extra=[("x-bad", "a\nb")]))

    def test_8_2_2_connection_specific_field(self):
        self.malformed(self.conn().request_headers(extra=[("keep-alive", "5")]))

    def test_8_2_2_te_other_than_trailers(self):
        self.malformed(self.conn().request_headers(extra=[("te", "gzip")]))

    def test_8_3_pseudo_header_after_regular_field(self):
        self.malformed([(":method", "GET"), (":scheme", "https"), ("x-a", "1"),
                        (":path", "/"), (":authority", SERVICE)])

    def test_8_3_unknown_pseudo_header(self):
        self.malformed(self.conn().request_headers(extra=[(":foo", "bar")]))

    def test_8_3_response_pseudo_header_in_a_request(self):
        self.malformed(self.conn().request_headers(extra=[(":status", "200")]))

    def test_8_3_1_duplicate_method(self):
        self.malformed([(":method", "GET"), (":method", "GET"), (":scheme", "https"),
                        (":authority", SERVICE), (":path", "/")])

    def test_8_3_1_empty_path(self):
        self.malformed([(":method", "GET"), (":scheme", "https"), (":authority", SERVICE),
                        (":path", "")])

    def test_8_3_1_missing_scheme(self):
        self.malformed([(":method", "GET"), (":authority", SERVICE), (":path", "/")])

    def test_8_1_1_content_length_larger_than_data(self):
        c = self.conn()
        c.headers(1, c.request_headers("/", "POST", [("content-length", "10")]), end_stream=False)
        c.frame(DataFrame(1, b"abc", flags=["END_STREAM"]))
        self.assert_stream_error(c, 1, PROTOCOL_ERROR)

    def test_8_1_trailers_without_end_stream(self):
        c = self.conn()
        c.headers(1, c.request_headers("/", "POST"), end_stream=False)
        c.headers(1, [("x-trailer", "1")], end_stream=False)
        self.assert_stream_error(c, 1, PROTOCOL_ERROR)


class Rfc7541(ConformanceCase):
    """HPACK: 4.2 table size updates, 5.2 Huffman, 6.1 indexes."""

    def test_4_2_table_size_update_over_the_limit(self):
        c = self.conn()
        c.headers(1, b"\x3f\xe1\xff\x03" + c.block(c.request_headers()))  # size 65536+
        self.assert_connection_error(c, COMPRESSION_ERROR)

    def test_5_2_huffman_with_invalid_padding(self):
        c = self.conn()
        # A literal with a Huffman-coded value whose padding is not all ones.
        c.headers(1, c.block(c.request_headers()) + b"\x40\x81\x00\x81\x00")
        self.assert_connection_error(c, COMPRESSION_ERROR)

    def test_6_1_index_zero(self):
        c = self.conn()
        c.headers(1, b"\x80")
        self.assert_connection_error(c, COMPRESSION_ERROR)

    def test_6_1_index_beyond_the_tables(self):
        c = self.conn()
        c.headers(1, b"\xbf\x40")  # index 127: beyond the static table, empty dynamic one
        self.assert_connection_error(c, COMPRESSION_ERROR)


class AbuseTest(ConformanceCase):
    """Each abuse class of issue 11, bounded; a legitimate client on another connection
    keeps being served throughout. (Rapid Reset: test_http2.py AbuseTest.)"""

    def extra_flags(self):
        return ["--http-idle-timeout", "2s"]

    def test_continuation_flood_closes_the_connection(self):
        c = self.conn()
        c.send(raw_frame(1, 0x01, 1, c.block(c.request_headers())[:2]))
        for _ in range(200):
            c.send(raw_frame(9, 0, 1, b"\x00"))
            if c.closed:
                break
        c.read(3)
        self.assertTrue(c.closed, "a CONTINUATION flood must end the connection")
        self.assert_others_served()

    def test_hpack_bomb_is_refused_with_431(self):
        c = self.conn()
        # One 4000-byte field into the dynamic table, then referenced 20 times: ~80 KB
        # decoded from ~4 KB on the wire, over the 60 KiB header list limit.
        # (:authority never indexed, so that the big field is the table's only entry.)
        base = [(":method", "GET"), (":scheme", "https"), (":authority", SERVICE, True),
                (":path", "/")]
        first = c.encoder.encode(base + [("x-bomb", "b" * 4000)])
        c.headers(1, first)
        self.assertEqual(c.status(1), 200)
        index = bytes([0x80 | 62])  # the newest dynamic entry: x-bomb
        block = c.encoder.encode(base) + index * 20
        c.headers(3, block)
        self.assertEqual(c.status(3), 431)
        self.assert_others_served()

    def test_settings_flood_in_one_frame(self):
        c = self.conn()
        c.send(raw_frame(4, 0, 0, b"\x00\x03\x00\x00\x00\x64" * 100))
        self.assert_connection_error(c, ENHANCE_YOUR_CALM)
        self.assert_others_served()

    def test_zero_window_stall_is_bounded_by_the_idle_timeout(self):
        c = Conn(self.port, self.ca, preface=False)
        self.addCleanup(c.close)
        c.send(PREFACE + raw_frame(4, 0, 0, b"\x00\x04\x00\x00\x00\x00"))  # window 0
        c.read(0.2)
        c.headers(1, c.request_headers("/"))
        started = time.monotonic()
        c.read(6)
        self.assertTrue(c.closed, "a stalled connection must end")
        self.assertLess(time.monotonic() - started, 6)
        self.assert_others_served()
        self.assertTrue(harness.wait_until(
            lambda: self.proc.stat("ringside_http_listener_upstream_cx_active") == 0
            or self.proc.stat("ringside_http_listener_request_active") == 0, timeout=5))

    def test_server_reset_bait_is_bounded(self):
        """MadeYouReset (CVE-2025-8671): requests that make the server reset their streams
        itself (a malformed field), over and over: each reset is a glitch."""
        c = self.conn()
        stream = 1
        block = c.encoder.encode(c.request_headers(extra=[("X-Upper", "1")]))
        # In batches under the stream limit, reading the resets between them (else the
        # stream limit ends the connection first: GOAWAY PROTOCOL_ERROR, also bounded).
        for _ in range(30):
            for _ in range(50):
                c.headers(stream, block)
                stream += 2
            c.read(0.05)
            if c.closed:
                break
        g = c.goaway(timeout=10)
        self.assertIsNotNone(g, f"{self.diag()}")
        self.assertEqual(g.error_code, ENHANCE_YOUR_CALM)
        self.assertGreaterEqual(self.proc.stat("ringside_listener_http2_abuse_closed_total"), 1)
        self.assert_others_served()

    def test_empty_data_frames_are_glitches(self):
        c = self.conn()
        c.headers(1, c.request_headers("/", "POST"), end_stream=False)
        for _ in range(1200):
            c.send(raw_frame(0, 0, 1, b""))
            if c.closed:
                break
        g = c.goaway(timeout=10)
        self.assertIsNotNone(g)
        self.assertEqual(g.error_code, ENHANCE_YOUR_CALM)
        self.assert_others_served()


if __name__ == "__main__":
    harness.main()
