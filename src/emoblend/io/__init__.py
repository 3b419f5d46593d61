"""Frame sources (images, videos, cameras) and sinks (overlays, videos, timelines, figures,
atomic output files): the edges of every path, depending on nothing above them."""
