"""What every ``csp`` command shares: the consoles, the one-line error exit, table printing."""

from __future__ import annotations

import re
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import click
import typer
from rich.console import Console, ConsoleDimensions
from rich.table import Table
from rich.text import Text
from typer.core import TyperGroup

#: width of output that goes to a file or a pipe: wide enough that no value is folded or cut
PIPED_WIDTH = 400


#: characters printed as escapes: C0 and C1 controls but line feed and tab, DEL, and the format characters that
#: reorder or hide text on a terminal (bidirectional embeddings, overrides and isolates, zero-width marks)
_UNPRINTABLE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]")


def printable(text: str) -> str:
    """``text`` with every control character written as an escape (``ESC`` as ``\\x1b``, U+202E as
    ``\\u202e``), so that a value from a file or the lake cannot move the cursor, recolour or retitle the
    terminal, or reorder what is shown. Line feeds and tabs stay."""

    def escape(match: re.Match[str]) -> str:
        code = ord(match.group())
        return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"

    return _UNPRINTABLE.sub(escape, text)


class FullWidthConsole(Console):
    """A rich ``Console`` that is as wide as :data:`PIPED_WIDTH` when its output is not a terminal, so
    ``csp campaign show X > out.txt`` keeps every number whole (rich would squeeze tables to 80 columns).
    On a terminal (or with an explicit width) it behaves as ``Console``.

    Every string it renders (a printed line, a table cell or title, a column name) passes through
    :func:`printable` first: the one place where control characters from data are escaped."""

    def render_str(self, text: str, **kwargs: Any) -> Text:
        return super().render_str(printable(text), **kwargs)

    @property
    def size(self) -> ConsoleDimensions:
        size = Console.size.fget(self)  # type: ignore[attr-defined]
        if self._width is not None or self.is_terminal:
            return size
        return ConsoleDimensions(PIPED_WIDTH, size.height)

    @size.setter
    def size(self, new_size: tuple[int, int]) -> None:
        Console.size.fset(self, new_size)  # type: ignore[attr-defined]


#: markup and emoji codes off: text from a file, the lake or the user (a source name, a formula, a stored
#: reason, an SQL result cell such as ``[red]x[/red]``, ``[bold`` or ``:x:``) prints as written, never as
#: rich markup or a picture; the CLI's own styles are ``rich.text.Text`` objects (see :func:`styled`)
console = FullWidthConsole(emoji=False, markup=False)
err = FullWidthConsole(stderr=True, emoji=False, markup=False)


def styled(label: str, style: str, message: str) -> Text:
    """``label`` in ``style`` followed by ``message`` as written (no markup is read from either; control
    characters are escaped by :func:`printable`)."""
    return Text.assemble((label, style), " ", printable(message))


def package_version() -> str:
    try:
        return version("alignn-csp")
    except PackageNotFoundError:
        return "unknown"


def fail(message: str, code: int = 1) -> None:
    """Print a one-line error and exit non-zero; the message is printed as written (a formula, a path or a
    stored reason holding ``[...]`` is not read as rich markup)."""
    err.print(styled("error:", "bold red", message), highlight=False)
    raise typer.Exit(code)


class OneLineErrors(TyperGroup):
    """The root command group: ends any command with one ``error:`` line (exit 1) instead of a traceback or
    a usage box when

    - an option's value is refused while the command line is read (a number out of its range or not
      finite, an output path the operating system refuses: :mod:`flows.cli._options`; also a value of the
      wrong type);
    - the operating system refuses a write under an output path the command checked (``--out``, ``--csv``,
      ``--export-cif``, ...), whatever the error (:func:`flows.checks.write_failure`);
    - the disk refuses any other write (full, read-only, no permission), whichever write path raised it;
    - the science or the data layer refuses the request (``csp.errors.CSPError``, ``storage.errors.StorageError``:
      one sentence each) and the command did not say it itself.

    A missing argument and an unknown option stay the usage errors they are (exit 2, with the usage)."""

    def invoke(self, ctx: click.Context) -> object:
        from csp.errors import CSPError
        from flows.checks import written_output
        from storage.errors import DiskWriteError, StorageError, describe_write_failure, is_disk_refusal

        try:
            return super().invoke(ctx)
        except typer.BadParameter as exc:
            if any(c.__name__ == "MissingParameter" for c in type(exc).__mro__):  # typer's or click's
                raise
            fail(" ".join(exc.format_message().split()))
        except OSError as exc:
            from flows.cli._options import OUTPUTS

            output = written_output(exc, ctx.meta.get(OUTPUTS, {}))
            if output is not None:
                fail(output)
            if not is_disk_refusal(exc):
                raise
            message = (
                str(exc)
                if isinstance(exc, DiskWriteError)
                else describe_write_failure(exc, advice="or choose another folder")
            )
            fail(message)
        except (CSPError, StorageError) as exc:  # refusals of the science and the data: one sentence each
            fail(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)


def print_arrow(table, *, title: str | None = None, max_rows: int = 50) -> None:
    """Render an Arrow table as a rich table (first ``max_rows`` rows)."""
    view = Table(title=title, show_lines=False)
    for name in table.column_names:
        view.add_column(name, overflow="fold")
    for row in table.slice(0, max_rows).to_pylist():
        view.add_row(*[_fmt(v) for v in row.values()])
    console.print(view)
    if table.num_rows > max_rows:
        console.print(f"... {table.num_rows - max_rows} more rows (use --csv or --parquet for all)")


def _fmt(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    text = str(value)
    return text if len(text) <= 80 or not console.is_terminal else text[:77] + "..."
