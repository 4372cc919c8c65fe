"""The handnet command run in-process, for the tests: cli.main(argv) with its output caught."""

import contextlib
import io

from handnet import cli


def run(argv):
    """cli.main(argv) -> (exit status, stdout, stderr); arguments may be paths or numbers."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = cli.main([str(arg) for arg in argv])
    return status, out.getvalue(), err.getvalue()


def assert_clean_error(status, err, *fragments):
    """Exit status 2 and one 'handnet: error: ...' line naming ``fragments``, no traceback."""
    assert status == 2
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("handnet: error: "), err
    for fragment in fragments:
        assert fragment in lines[0]
