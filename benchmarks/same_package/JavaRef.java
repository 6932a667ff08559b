// JavaRef: the reference for bench_same_package.py's Java numbers. Every .java file under
// ROOT is parsed and attributed by javac in one task (the Compiler Tree API; missing
// third-party classes are errors that attribution goes on past). Every identifier or
// qualified name in code (imports, package clauses and comments left out) that javac
// resolves to a type declared in another file of the same package -- the outermost class
// of a nested one -- is an edge user -> declarer.
//
//     java JavaRef.java ROOT [CLASSPATH] > edges.jsonl
//
// Output, one JSON object per line: {"user", "decl", "name"}, paths relative to ROOT, then
// one {"files": [...]} line listing every file javac read.
import com.sun.source.tree.*;
import com.sun.source.util.*;
import javax.lang.model.element.*;
import javax.tools.*;
import java.nio.file.*;
import java.util.*;
import java.util.stream.*;

public class JavaRef {
    public static void main(String[] args) throws Exception {
        Path root = Paths.get(args[0]).toAbsolutePath();
        List<Path> paths;
        try (Stream<Path> s = Files.walk(root)) {
            paths = s.filter(p -> p.toString().endsWith(".java")
                             && !p.getFileName().toString().equals("module-info.java"))
                     .sorted().collect(Collectors.toList());
        }
        JavaCompiler javac = ToolProvider.getSystemJavaCompiler();
        StandardJavaFileManager fm = javac.getStandardFileManager(null, null, null);
        DiagnosticCollector<JavaFileObject> diags = new DiagnosticCollector<>();
        JavacTask task = (JavacTask) javac.getTask(null, fm, diags,
            options(args.length > 1 ? args[1] : ""),
            null, fm.getJavaFileObjectsFromPaths(paths));
        Iterable<? extends CompilationUnitTree> units = task.parse();
        task.analyze();
        Trees trees = Trees.instance(task);
        TreeSet<String> out = new TreeSet<>();
        for (CompilationUnitTree cu : units) {
            String user = rel(root, cu.getSourceFile());
            String pkg = cu.getPackageName() == null ? "" : cu.getPackageName().toString();
            new TreePathScanner<Void, Void>() {
                @Override public Void visitImport(ImportTree t, Void v) { return null; }
                @Override public Void visitPackage(PackageTree t, Void v) { return null; }
                @Override public Void visitIdentifier(IdentifierTree t, Void v) {
                    note(); return super.visitIdentifier(t, v);
                }
                @Override public Void visitMemberSelect(MemberSelectTree t, Void v) {
                    note(); return super.visitMemberSelect(t, v);
                }
                void note() {
                    Element e = trees.getElement(getCurrentPath());
                    if (!(e instanceof TypeElement)) return;
                    while (e.getEnclosingElement() != null
                           && e.getEnclosingElement().getKind() != ElementKind.PACKAGE) {
                        e = e.getEnclosingElement();
                    }
                    Element p = e.getEnclosingElement();
                    if (p == null || !((PackageElement) p).getQualifiedName().contentEquals(pkg)) return;
                    TreePath decl = trees.getPath(e);
                    if (decl == null) return;
                    String file = rel(root, decl.getCompilationUnit().getSourceFile());
                    if (!file.equals(user)) {
                        out.add("{\"user\": \"" + user + "\", \"decl\": \"" + file
                                + "\", \"name\": \"" + e.getSimpleName() + "\"}");
                    }
                }
            }.scan(cu, null);
        }
        out.forEach(System.out::println);
        System.out.println("{\"files\": [" + paths.stream().map(p -> "\"" + root.relativize(p)
            .toString().replace('\\', '/') + "\"").collect(Collectors.joining(", ")) + "]}");
    }

    static List<String> options(String classpath) {
        List<String> o = new ArrayList<>(List.of("-proc:none", "-XDshould-stop.ifError=FLOW",
                                                 "-Xmaxerrs", "0", "-implicit:none", "-nowarn"));
        if (!classpath.isEmpty()) o.addAll(List.of("-cp", classpath));
        return o;
    }

    static String rel(Path root, JavaFileObject f) {
        return root.relativize(Paths.get(f.toUri())).toString().replace('\\', '/');
    }
}
