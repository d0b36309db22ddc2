"""sojourn: a self-hosted, Midjourney-style image bot for Discord."""
