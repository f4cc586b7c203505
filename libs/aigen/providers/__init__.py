"""Provider adapters: one class per provider API family, resolved by the seed's adapter names."""
