"""No code in handnet can unpickle except the restricted MNIST unpickler, and every np.load says
allow_pickle=False: read from the source itself (the AST), so a new call cannot slip in."""

import ast
from pathlib import Path

import handnet

PACKAGE = Path(handnet.__file__).parent
RESTRICTED_UNPICKLER = PACKAGE / "datasets" / "safe_pickle.py"
#: Calls that unpickle (or run code from) bytes, by their dotted name.
UNPICKLING_CALLS = {
    "pickle.load",
    "pickle.loads",
    "pickle.Unpickler",
    "pickle._Unpickler",
    "cPickle.load",
    "cPickle.loads",
    "dill.load",
    "dill.loads",
    "joblib.load",
    "marshal.load",
    "marshal.loads",
    "shelve.open",
    "torch.load",
    "np.load",
    "numpy.load",
    "pd.read_pickle",
    "pandas.read_pickle",
    "yaml.load",
}


def dotted_name(node):
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        prefix = dotted_name(node.value)
        return None if prefix is None else f"{prefix}.{node.attr}"
    return None


def sources():
    return sorted(PACKAGE.rglob("*.py"))


def test_only_the_restricted_unpickler_imports_pickle():
    importers = []
    for path in sources():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            if any(
                name.split(".")[0] in ("pickle", "cPickle", "dill", "joblib", "shelve", "marshal")
                for name in names
            ):
                importers.append(str(path.relative_to(PACKAGE)))
    assert importers == [str(RESTRICTED_UNPICKLER.relative_to(PACKAGE))]


def test_every_load_call_is_np_load_with_allow_pickle_false():
    found = []
    for path in sources():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.Call):
                continue
            name = dotted_name(node.func)
            if name not in UNPICKLING_CALLS or path == RESTRICTED_UNPICKLER:
                continue
            keywords = {k.arg: k.value for k in node.keywords}
            allow = keywords.get("allow_pickle")
            safe = (
                name in ("np.load", "numpy.load")
                and isinstance(allow, ast.Constant)
                and allow.value is False
            )
            found.append((str(path.relative_to(PACKAGE)), node.lineno, name, safe))
    unsafe = [call for call in found if not call[3]]
    assert not unsafe, f"calls that may unpickle: {unsafe}"


def test_the_audit_sees_the_package():
    """Guard against a vacuous pass: the walk finds the files it is meant to read."""
    names = {path.name for path in sources()}
    assert {"saving.py", "safe_pickle.py", "cache.py", "reader.py"} <= names
