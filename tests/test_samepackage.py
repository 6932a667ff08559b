"""Same-package dependencies (packing/samepackage.py): Java and Go files that use each
other's names without an import get an edge, weighed like an import."""
from __future__ import annotations

from fimpack.packing.graph import order_repository
from fimpack.packing.imports import extract_imports
from fimpack.records import SourceFile

GO_MOD = "module example.com/shapes\n\ngo 1.21\n"

GO_SHAPE = """// Package shapes computes areas.
package shapes

import "math"

// Shape is anything with an area.
type Shape interface {
	Area() float64
}

const defaultScale = 1.0

var registry = map[string]Shape{}

func Register(name string, s Shape) { registry[name] = s }

func round(x float64) float64 { return math.Round(x*100) / 100 }
"""

GO_CIRCLE = """package shapes

import "math"

// Circle is a Shape.
type Circle struct {
	Radius float64
	Name   string
}

func (c *Circle) Area() float64 {
	return round(math.Pi * c.Radius * c.Radius * defaultScale)
}

func init() {
	Register("circle", &Circle{Radius: 1, Name: "unit"})
}
"""

# Uses only names that are local here, struct fields and methods: no edge to shape.go.
GO_SQUARE = """package shapes

type Square struct{ Side float64 }

func (s Square) Area() float64 {
	registry := 2.0 // a local that shadows the package's registry
	round := func(x float64) float64 { return x }
	return round(s.Side * s.Side * registry)
}
"""

GO_TEST = """package shapes

import "testing"

func TestCircle(t *testing.T) {
	c := Circle{Radius: 2}
	if c.Area() == 0 {
		t.Fatal("zero")
	}
}
"""

# An external test package: a package of its own, which imports shapes.
GO_XTEST = """package shapes_test

import (
	"testing"

	"example.com/shapes"
)

func TestRegister(t *testing.T) {
	shapes.Register("x", shapes.Square{Side: 1})
}
"""

# Same clause, other folder: another package.
GO_OTHER = """package shapes

func Register() {}
func round() {}
"""


def go_repo() -> list[SourceFile]:
    return [SourceFile("shapes", p, "go" if p.endswith(".go") else "text", c) for p, c in [
        ("go.mod", GO_MOD), ("shape.go", GO_SHAPE), ("circle.go", GO_CIRCLE),
        ("square.go", GO_SQUARE), ("circle_test.go", GO_TEST), ("shapes_test.go", GO_XTEST),
        ("legacy/shapes.go", GO_OTHER)]]


def test_go_package_level_names_link_files_of_one_package():
    ro = order_repository(go_repo())
    edges = set(ro.edges)
    assert ("circle.go", "shape.go") in edges      # round, defaultScale, Register
    assert ("circle_test.go", "circle.go") in edges  # Circle
    assert ("square.go", "shape.go") not in edges    # only shadowing locals
    assert ("shapes_test.go", "circle.go") in edges  # the import of the package (not names)
    assert not any("legacy/" in v for _, v in edges)  # same clause, other folder
    assert not any(u == "shape.go" for u, _ in edges)
    # dependencies first
    assert ro.order.index("shape.go") < ro.order.index("circle.go") < ro.order.index(
        "circle_test.go")


def test_go_names_declared_and_used():
    names = extract_imports(GO_CIRCLE, "go").package
    assert names.package == "shapes"
    assert names.declares == ("Circle",)          # not init, not the method Area
    assert {"round", "defaultScale", "Register"} <= set(names.uses)
    assert "Radius" not in names.uses and "Name" not in names.uses  # struct literal keys
    assert "Area" not in names.uses and "Pi" not in names.uses      # selectors
    square = extract_imports(GO_SQUARE, "go").package
    assert "registry" not in square.uses and "round" not in square.uses


def test_go_map_literal_keys_are_uses():
    src = "package p\n\nvar names = map[Kind]string{KindA: \"a\", KindB: \"b\"}\n"
    assert {"KindA", "KindB", "Kind"} <= set(extract_imports(src, "go").package.uses)


def test_go_struct_keys_in_nested_literals_are_fields():
    src = """package p

var a = []Point{{X: 1, Y: origin}}
var b = map[string]*Point{"o": {X: 2}}
var c = [...]int{indexA: 1}
"""
    uses = set(extract_imports(src, "go").package.uses)
    assert "X" not in uses and "Y" not in uses
    assert {"Point", "origin", "indexA"} <= uses


def test_go_same_package_edge_weighs_like_a_named_import():
    ro = order_repository(go_repo())
    # circle.go uses three names of shape.go: 1 + log2(1 + 3) = 3
    assert ro.importance[("circle.go", "shape.go")] == 3.0


JAVA_A = """package com.example.shapes;

import java.util.List;

/** A base shape. */
public abstract class Shape {
    public static final double SCALE = 1.0;
    public abstract double area();
    static Shape largest(List<Shape> all) { return all.get(0); }
}
"""

JAVA_B = """package com.example.shapes;

public class Circle extends Shape {
    private final double r;

    public Circle(double r) { this.r = r; }

    @Override
    public double area() { return Math.PI * r * r * Shape.SCALE; }
}
"""

JAVA_UTIL = """package com.example.shapes;

final class Geometry {
    static Circle unit() { return new Circle(1); }
}
"""

# A single-type import shadows the package's own Shape; a type parameter named Circle and
# a nested class named Geometry shadow the others.
JAVA_SHADOW = """package com.example.shapes;

import com.example.other.Shape;

class Shadowed<Circle> {
    static class Geometry {}
    Shape s;
    Circle c;
    Geometry g;
}
"""

JAVA_TEST = """package com.example.shapes;

import static org.junit.Assert.assertEquals;

import org.junit.Test;

public class CircleTest {
    @Test
    public void area() {
        assertEquals(Math.PI, new Circle(1).area(), 1e-9);
        assertEquals(Math.PI, Geometry.unit().area(), 1e-9);
    }
}
"""

JAVA_OTHER_PACKAGE = """package com.example.other;

public class Shape {}
"""


def java_repo() -> list[SourceFile]:
    return [SourceFile("shapes", p, "java", c) for p, c in [
        ("src/main/java/com/example/shapes/Shape.java", JAVA_A),
        ("src/main/java/com/example/shapes/Circle.java", JAVA_B),
        ("src/main/java/com/example/shapes/Geometry.java", JAVA_UTIL),
        ("src/main/java/com/example/shapes/Shadowed.java", JAVA_SHADOW),
        ("src/main/java/com/example/other/Shape.java", JAVA_OTHER_PACKAGE),
        ("src/test/java/com/example/shapes/CircleTest.java", JAVA_TEST)]]


def test_java_same_package_types_link_without_imports():
    ro = order_repository(java_repo())
    main = "src/main/java/com/example/"
    edges = set(ro.edges)
    assert (main + "shapes/Circle.java", main + "shapes/Shape.java") in edges  # extends
    assert (main + "shapes/Geometry.java", main + "shapes/Circle.java") in edges
    # a test in another source root, same package
    assert ("src/test/java/com/example/shapes/CircleTest.java",
            main + "shapes/Circle.java") in edges
    assert ("src/test/java/com/example/shapes/CircleTest.java",
            main + "shapes/Geometry.java") in edges
    # shadowed: the import (to the other package), not the package's own types
    shadow = main + "shapes/Shadowed.java"
    assert {v for u, v in edges if u == shadow} == {main + "other/Shape.java"}
    assert ro.importance[(main + "shapes/Circle.java", main + "shapes/Shape.java")] == 1.0
    order = ro.order
    assert order.index(main + "shapes/Shape.java") < order.index(main + "shapes/Circle.java")


def test_java_fully_qualified_name_is_not_shadowed():
    src = """package p.q;

import other.Thing;

class User {
    Object f(Object o) { return (p.q.Thing) o; }
}
"""
    names = extract_imports(src, "java").package
    assert names.package == "p.q" and names.declares == ("User",)
    assert "Thing" in names.uses


def test_java_uses_read_from_code_not_comments_or_strings():
    src = """package p;

/** See {@link Helper}. */
@Marker
class User {
    String s = "Helper";
    int n = Constants.N + Util.twice(2);
    Runnable r = Factory::make;
    // Other o;
}
"""
    uses = set(extract_imports(src, "java").package.uses)
    assert {"Marker", "Constants", "Util", "Factory"} <= uses
    assert "Helper" not in uses and "Other" not in uses
