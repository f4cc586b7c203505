"""Tools for working on aigen itself (code generation, benchmarks); not used at run time."""
