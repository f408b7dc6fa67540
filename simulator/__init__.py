"""A local stand-in for Twilio: REST, Media Streams and signed callbacks (demo and tests)."""
