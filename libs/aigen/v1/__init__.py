"""Generated from protos/aigen/v1 by aigen.devtools.protogen. Do not edit."""
