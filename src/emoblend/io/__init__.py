"""Frame sources (images, videos, cameras) and sinks (overlays, videos, timelines)."""
