"""Service layer shared by the bot, the CLI and the worker. Imports neither discord nor torch."""
