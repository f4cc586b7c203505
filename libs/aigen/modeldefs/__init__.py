"""Model definitions: one declarative definition per model drives form, validation and price."""
