"""The fitting of upstream text keeps one rule whatever the path through it: NUL and lone
surrogates gone, cut to the column (billing.clamping looks for them only where they can be)."""

from hypothesis import given
from hypothesis import strategies as st

from billing.clamping import _UNSTORABLE, REQUEST_ID_LENGTH, fit_text, is_storable_request_id

ANY_TEXT = st.text(st.characters(codec=None, exclude_categories=()), max_size=80) | st.text(
    st.sampled_from("ab\x00\ud800\udfff\u00e9-:"), max_size=80)


@given(ANY_TEXT, st.sampled_from([None, 1, 10, 64]))
def test_fit_text_drops_what_no_column_holds_and_cuts_to_length(text, max_length):
    expected = _UNSTORABLE.sub("", text)
    assert fit_text(text, max_length) == (expected[:max_length] if max_length else expected)


@given(ANY_TEXT)
def test_a_request_id_is_storable_only_whole(text):
    assert is_storable_request_id(text) == (0 < len(text) <= REQUEST_ID_LENGTH and not _UNSTORABLE.search(text))
