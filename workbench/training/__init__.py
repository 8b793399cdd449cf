"""The run this window trains and is about (the focus run): starting and steering it, its
progress, the status bar and the Sample dock."""
