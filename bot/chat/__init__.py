"""Chat adapters: each turns a rendered alert into one platform call. No business logic."""
