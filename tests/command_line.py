"""Running the `minisnn` command in-process, as the CLI tests do."""
from __future__ import annotations

from minisnn.cli import main


def run(capsys, *argv):
    """(exit status, stdout, stderr) of `minisnn ARGV...` run through `minisnn.cli.main`."""
    try:
        rc = main([str(a) for a in argv])
    except SystemExit as exc:   # argparse exits on its own errors and after --help / --version
        rc = exc.code
    out = capsys.readouterr()
    return rc, out.out, out.err
