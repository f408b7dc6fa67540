"""Parse the TwiML the simulator executes: `<Say>`, `<Pause>`, `<Hangup>`, `<Dial>` (a number),
and `<Connect><Stream url>` with its `<Parameter>`s. Other verbs parse as `Unsupported`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit
from xml.etree import ElementTree

from simulator.errors import TwimlError


@dataclass(frozen=True)
class Say:
    text: str
    loop: int = 1


@dataclass(frozen=True)
class Pause:
    length_s: float = 1.0


@dataclass(frozen=True)
class Hangup:
    pass


@dataclass(frozen=True)
class Dial:
    """Connect the caller to `number` (`<Dial>+1...</Dial>` or `<Dial><Number>`)."""

    number: str


@dataclass(frozen=True)
class Stream:
    """A bidirectional media stream (`<Connect><Stream>`): blocks the document until the
    websocket closes or the call ends."""

    url: str
    parameters: Mapping[str, str] = field(default_factory=dict)
    name: str | None = None


@dataclass(frozen=True)
class Unsupported:
    tag: str


Verb = Say | Pause | Hangup | Dial | Stream | Unsupported


def parse_twiml(document: str) -> tuple[Verb, ...]:
    """The verbs of a `<Response>` document, in order."""
    try:
        root = ElementTree.fromstring(document)
    except ElementTree.ParseError as exc:
        raise TwimlError(f"TwiML is not well-formed XML: {exc}") from exc
    if root.tag != "Response":
        raise TwimlError(f"TwiML root must be <Response>, not <{root.tag}>")
    return tuple(_verb(element) for element in root)


def first_stream(verbs: tuple[Verb, ...]) -> Stream | None:
    return next((verb for verb in verbs if isinstance(verb, Stream)), None)


def _verb(element: ElementTree.Element) -> Verb:
    try:
        if element.tag == "Say":
            return Say(text=(element.text or "").strip(), loop=int(element.get("loop", "1")))
        if element.tag == "Pause":
            return Pause(length_s=float(element.get("length", "1")))
    except ValueError as exc:
        raise TwimlError(f"<{element.tag}> has a non-numeric attribute: {exc}") from exc
    if element.tag == "Hangup":
        return Hangup()
    if element.tag == "Dial":
        return _dial(element)
    if element.tag == "Connect":
        streams = [child for child in element if child.tag == "Stream"]
        if streams:
            return _stream(streams[0])
    return Unsupported(tag=element.tag)


def _dial(element: ElementTree.Element) -> Dial:
    numbers = [child for child in element if child.tag == "Number"]
    number = (numbers[0].text if numbers else element.text) or ""
    if not number.strip():
        raise TwimlError("<Dial> without a number")
    return Dial(number=number.strip())


def _stream(element: ElementTree.Element) -> Stream:
    url = element.get("url", "")
    if urlsplit(url).scheme not in ("ws", "wss") or not urlsplit(url).netloc:
        raise TwimlError(f"<Stream url> must be an absolute ws:// or wss:// URL, got {url!r}")
    parameters: dict[str, str] = {}
    for child in element:
        if child.tag != "Parameter":
            continue
        name = child.get("name")
        if not name:
            raise TwimlError("<Parameter> without a name")
        parameters[name] = child.get("value", "")
    return Stream(url=url, parameters=parameters, name=element.get("name"))
