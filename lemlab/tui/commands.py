"""ctrl+p: every verb of the app and of each pane, fuzzy-searched (Textual's command palette)."""

from __future__ import annotations

from textual.command import DiscoveryHit, Hit, Hits, Provider

from lemlab.tui.panes.base import Verb


class LemlabCommands(Provider):
    def _verbs(self) -> list[Verb]:
        return list(self.app.all_verbs())  # type: ignore[attr-defined]

    async def discover(self) -> Hits:
        for verb in self._verbs():
            yield DiscoveryHit(verb.name, verb.run, help=verb.help)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for verb in self._verbs():
            score = matcher.match(verb.name)
            if score > 0:
                yield Hit(score, matcher.highlight(verb.name), verb.run, help=verb.help)
