"""A Responses stream's text deltas are written from bytes encoded once per message
(gateway.surfaces.responses_stream._TextDelta): they must be the very bytes the generic
event encoder writes, for any text, and the message's text must still be all its deltas."""

import pytest

from gateway.surfaces.responses_stream import _Events, _TextDelta


@pytest.mark.parametrize("delta", ["tok ", 'a "quote" and a \\ backslash', "ünïcödé 漢字 🙂", "\ud800 a lone surrogate",
                                   "", "line\nbreak\ttab\x00nul"])
def test_a_pre_encoded_delta_is_the_generic_event_byte_for_byte(delta):
    events = _Events.__new__(_Events)
    events.sequence = 41
    generic = events.event("response.output_text.delta", item_id="msg_0123abc", output_index=2, content_index=0,
                           delta=delta, logprobs=[])
    assert _TextDelta("msg_0123abc", 2).event(41, delta) == generic


def test_the_message_text_is_every_delta_in_order():
    class Exchange:
        pass

    events = _Events(Exchange())
    pieces = [f"piece {i} " for i in range(500)]
    for piece in pieces:
        list(events.text(piece))
    closing = b"".join(events.close_open())
    assert events.output[0]["content"][0]["text"] == "".join(pieces)
    assert b'"text":"piece 0 piece 1 ' in closing  # output_text.done carries the whole text
