"""A minimal server-sent events reader over a real HTTP client (requests, streaming), for the end-to-end tests."""

import json
from dataclasses import dataclass

import requests


@dataclass
class Message:
    """One SSE event (`data` decoded from JSON, None for a comment) with the id it carried, or a comment."""

    data: dict | None
    id: str | None = None
    comment: str | None = None


class SseClient:
    """An open event stream: next() returns each event or comment as it arrives."""

    def __init__(self, url: str, *, headers: dict | None = None, timeout: float = 60):
        self.response = requests.get(url, headers={"Accept": "text/event-stream", **(headers or {})}, stream=True,
                                     timeout=(10, timeout))
        self.status = self.response.status_code
        self.chunks = self.response.iter_content(chunk_size=None) if self.status == 200 else iter(())
        self.buffer = b""
        self.last_id: str | None = None

    def next(self) -> Message:
        """The next event or comment (a `retry:` alone is skipped); StopIteration when the stream ended."""
        while True:
            while b"\n\n" not in self.buffer:
                self.buffer += next(self.chunks)
            block, self.buffer = self.buffer.split(b"\n\n", 1)
            fields: dict[str, str] = {}
            comment = None
            for line in block.decode().split("\n"):
                if line.startswith(":"):
                    comment = line[1:].strip()
                else:
                    name, _, value = line.partition(":")
                    fields[name] = value[1:] if value.startswith(" ") else value
            if "id" in fields:
                self.last_id = fields["id"]
            if "data" in fields:
                return Message(json.loads(fields["data"]), fields.get("id"))
            if comment is not None:
                return Message(None, comment=comment)

    def events(self):
        """Each data message, skipping comments."""
        while True:
            message = self.next()
            if message.data is not None:
                yield message

    def close(self) -> None:
        """Drop the connection (a client cut)."""
        self.response.close()
