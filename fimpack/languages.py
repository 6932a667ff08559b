"""Language detection by file name and extension (what The Stack and StarCoder do): the
vocabulary ingest, licence detection and the report share."""
from __future__ import annotations

import posixpath

EXTENSIONS = {
    ".py": "python", ".pyi": "python",
    ".java": "java",
    ".js": "javascript", ".mjs": "javascript", ".cjs": "javascript", ".jsx": "javascript",
    ".ts": "typescript", ".mts": "typescript", ".cts": "typescript", ".tsx": "tsx",
    ".go": "go",
    ".rs": "rust",
    ".c": "c", ".h": "c",
    ".cc": "cpp", ".cpp": "cpp", ".cxx": "cpp", ".c++": "cpp",
    ".hh": "cpp", ".hpp": "cpp", ".hxx": "cpp", ".h++": "cpp", ".ipp": "cpp",
    ".cs": "csharp", ".kt": "kotlin", ".kts": "kotlin", ".scala": "scala", ".swift": "swift",
    ".rb": "ruby", ".php": "php", ".lua": "lua", ".pl": "perl", ".pm": "perl", ".r": "r",
    ".jl": "julia", ".hs": "haskell", ".ml": "ocaml", ".ex": "elixir", ".exs": "elixir",
    ".erl": "erlang", ".clj": "clojure", ".dart": "dart", ".m": "objective-c",
    ".sh": "shell", ".bash": "shell", ".zsh": "shell", ".ps1": "powershell",
    ".sql": "sql", ".proto": "protobuf", ".cmake": "cmake",
    ".html": "html", ".htm": "html", ".css": "css", ".scss": "scss", ".vue": "vue",
    ".md": "markdown", ".rst": "restructuredtext",
    ".yaml": "yaml", ".yml": "yaml", ".toml": "toml", ".json": "json", ".xml": "xml",
    ".ini": "ini", ".cfg": "ini",
}

FILENAMES = {
    "Makefile": "makefile", "GNUmakefile": "makefile", "makefile": "makefile",
    "Dockerfile": "dockerfile", "CMakeLists.txt": "cmake",
    "Cargo.toml": "toml", "go.mod": "go-mod",
}


def detect_language(path: str) -> str | None:
    """The language of a file from its name, or None when fimpack does not take it."""
    name = posixpath.basename(path)
    if name in FILENAMES:
        return FILENAMES[name]
    ext = posixpath.splitext(name)[1]
    return EXTENSIONS.get(ext) or EXTENSIONS.get(ext.lower())
