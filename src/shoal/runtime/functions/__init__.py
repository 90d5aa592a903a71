"""The functions runtime shoal ships: the gateway process, its warm workers, the action workers."""
