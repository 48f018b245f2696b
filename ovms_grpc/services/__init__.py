"""Thin gRPC servicers: decode, call the manager/servables, encode."""
