"""The worker's side: model loading, rendering and the tiny models used to test them."""
