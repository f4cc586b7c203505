"""Episode exports: storyboard (HTML, PDF), animatic video, editor timeline (OTIO, FCP XML)."""
