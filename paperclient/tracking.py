"""Exactly once by seq: which of a paper's events the client already has, and where to resume from."""

from dataclasses import dataclass, field

MAX_HELD = 10_000  # seqs held above a gap; past this the gap is given up (only coalesced progress stays open)


@dataclass
class SeqTracker:
    """A paper's contiguous high-water mark, and the seqs received beyond a gap."""

    contiguous: int | None = None
    above: set[int] = field(default_factory=set)
    final: bool = False  # the newest status seen is final (completed, failed, cancelled)

    def accept(self, seq: int) -> bool:
        """Whether an event with this seq is new; records it."""
        if self.contiguous is None:
            self.contiguous = seq  # first event of a paper met through a topic: nothing before it was asked for
            return True
        if seq <= self.contiguous or seq in self.above:
            return False
        self.above.add(seq)
        while self.contiguous + 1 in self.above:
            self.contiguous += 1
            self.above.remove(self.contiguous)
        if len(self.above) > MAX_HELD:
            self.reset(max(self.above))
        return True

    def reset(self, seq: int) -> None:
        """Take everything up to seq as had (a fresh snapshot, or a gap that cannot be closed)."""
        self.contiguous = seq
        self.above.clear()
