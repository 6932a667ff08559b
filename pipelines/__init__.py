"""fimpack.pipelines."""
