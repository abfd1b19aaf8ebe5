"""`?`: the keys of the screen underneath, with the binding ids `keys` in skinctl.toml remaps."""

from __future__ import annotations

from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen, Screen
from textual.widgets import DataTable, Static


class HelpScreen(ModalScreen[None]):
    CSS_PATH = Path(__file__).with_suffix(".tcss")
    BINDINGS = [
        Binding("escape", "dismiss", "Close", id="help_close"),
        Binding("q", "dismiss", "Close", show=False, id="help_close_q"),
    ]

    def __init__(self, under: Screen) -> None:
        super().__init__()
        self.under = under
        self.rows = self._bindings_of(under)

    def _bindings_of(self, screen: Screen) -> list[tuple[str, str, str]]:
        """(keys, what it does, binding id) for the screen and the app, after remapping."""
        seen: dict[str, list[str]] = {}
        info: dict[str, tuple[str, str]] = {}
        for key, active in screen.active_bindings.items():
            binding = active.binding
            if binding.system or not binding.description and binding.id is None:
                continue
            ident = binding.id or binding.action
            seen.setdefault(ident, []).append(
                self.app.get_key_display(binding) if binding.key == key else key
            )
            info[ident] = (binding.description or binding.action, binding.id or "")
        return [(" ".join(dict.fromkeys(keys)), info[i][0], info[i][1]) for i, keys in seen.items()]

    def compose(self) -> ComposeResult:
        with Vertical(id="help-box"):
            yield Static(
                f"Keys: {self.under.__class__.__name__.removesuffix('Screen').lower()}",
                id="help-title",
            )
            yield DataTable(id="help-table", cursor_type="none", zebra_stripes=True)
            yield Static(
                'Remap in skinctl.toml:  [keys]  <binding id> = "key,key"      esc closes',
                id="help-hint",
            )

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("key", "action", "binding id")
        for row in self.rows:
            table.add_row(*row)
