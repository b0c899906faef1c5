"""Benchmarks (not tests): each module measures one figure beside a peer measured in the same run."""
