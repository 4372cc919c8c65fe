"""A hypothesis strategy for JSON documents (model configs) with a few fields changed."""

import copy

from hypothesis import strategies as st

#: Values that break a loader that trusts a config: sizes far too large, zero, negative, the
#: wrong type, non-finite numbers (json.loads accepts NaN and Infinity).
NASTY_VALUES = st.one_of(
    st.sampled_from(
        [0, -1, 1, 2**31, 2**63, 10**30, 1.5, float("nan"), float("inf"), None, True, "", "x", [],
         {}, [None], [0], [2**31, 2**31], [-1, 3]]
    ),
    st.integers(-(2**64), 2**64),
    st.text(max_size=8),
    st.recursive(
        st.none() | st.booleans() | st.integers(-5, 5) | st.text(max_size=4),
        lambda children: st.lists(children, max_size=3)
        | st.dictionaries(st.text(max_size=4), children, max_size=3),
        max_leaves=6,
    ),
)


def _paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _paths(value, (*prefix, index))


@st.composite
def fuzzed_json(draw, document, max_edits=4):
    """``document`` after 1 to ``max_edits`` edits: a value replaced, a key deleted or added,
    a value wrapped in a list."""
    document = copy.deepcopy(document)
    for _ in range(draw(st.integers(1, max_edits))):
        paths = [path for path in _paths(document) if path]
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = document
        for step in path[:-1]:
            parent = parent[step]
        last = path[-1]
        edit = draw(st.sampled_from(["replace", "replace", "delete", "add", "wrap"]))
        # Copies: a later edit must not change the shared lists and dicts of NASTY_VALUES.
        if edit == "replace":
            parent[last] = copy.deepcopy(draw(NASTY_VALUES))
        elif edit == "delete":
            del parent[last]
        elif edit == "add" and isinstance(parent, dict):
            parent[draw(st.text(max_size=12))] = copy.deepcopy(draw(NASTY_VALUES))
        elif edit == "wrap":
            parent[last] = [parent[last]]
    return document
