// The shape of the web project, checked on the built assembly: folders form layers, pages go through commands and
// queries, services know nothing of the web host. A new loop or a shortcut fails here with the references named.
using Mono.Cecil;
using Mono.Cecil.Cil;

namespace QubesWeb.UnitTests;

public sealed class ArchitectureTests
{
    private static readonly Lazy<DependencyGraph> Graph = new(() => DependencyGraph.Read(typeof(QubesWeb.QubesWebHost).Assembly.Location));

    [Fact]
    public void TheFoldersOfTheWebProjectFormNoLoop()
    {
        var loops = Graph.Value.Loops();
        Assert.True(loops.Count == 0, "Folders that depend on each other (each loop, then one reference per edge):\n" +
            string.Join("\n", loops.Select(l => "  " + string.Join(" <-> ", l) + "\n" + Graph.Value.Explain(l))));
    }

    [Fact]
    public void PagesNeitherDriveTheHypervisorNorTheInventoryNorTheEngine()
    {
        // Pages read queries and call commands (a job kind is queued by a command, never used by a page). The hypervisor's value types (a run state, a domain's figures) are the
        // console's vocabulary and may be shown; its services, EF, the inventory's writer and the engine may not be used.
        var forbidden = Graph.Value.References("QubesWeb.Components")
            .Where(r => IsHypervisorService(r.To) || r.To.StartsWith("Microsoft.EntityFrameworkCore", StringComparison.Ordinal)
                        || r.To is "QubesWeb.Data.InventoryDbContext" or "QubesWeb.Data.Qubes.Inventory" or "QubesWeb.Services.Jobs.JobEngine"
                        || Graph.Value.IsJobKind(r.To))
            .Select(r => $"  {r.From} uses {r.To}")
            .Distinct().Order().ToList();
        Assert.True(forbidden.Count == 0, "Pages that bypass the commands and queries:\n" + string.Join("\n", forbidden));
    }

    [Fact]
    public void ServicesKnowNothingOfTheWebHostOrItsPages()
    {
        var forbidden = Graph.Value.References("QubesWeb.Services")
            .Where(r => r.To.StartsWith("QubesWeb.Components", StringComparison.Ordinal) || r.To.StartsWith("QubesWeb.Hosting", StringComparison.Ordinal))
            .Select(r => $"  {r.From} uses {r.To}")
            .Distinct().Order().ToList();
        Assert.True(forbidden.Count == 0, "Services that depend on the web host or its components:\n" + string.Join("\n", forbidden));
    }

    [Fact]
    public void TheGraphKnowsTheJobKinds()
    {
        // Guards the page rule above: it would pass vacuously if no job kind were recognised.
        Assert.True(Graph.Value.IsJobKind("QubesWeb.Services.Templates.RestartOutdatedJob"));
        Assert.True(Graph.Value.IsJobKind("QubesWeb.Services.Qubes.LifecycleJob"));
    }

    [Fact]
    public void TheGraphSeesReferencesMadeInsideMethodBodies()
    {
        // Guards the check itself: the engine is only ever used inside method bodies by the command layer, so a
        // reader that missed bodies would find no edge from the qube commands to the jobs folder.
        Assert.Contains(Graph.Value.References("QubesWeb.Services.Qubes"), r => r.To.StartsWith("QubesWeb.Services.Jobs.", StringComparison.Ordinal));
    }

    private static bool IsHypervisorService(string type)
    {
        if (!type.StartsWith("QubesWeb.Hypervisor.", StringComparison.Ordinal)) return false;
        return Graph.Value.IsBehaviour(type);
    }

    /// <summary>A reference from a type of the web project to another type, both by full name.</summary>
    public sealed record Reference(string From, string To);

    private sealed class DependencyGraph
    {
        private readonly List<Reference> _references = [];
        private readonly HashSet<string> _behaviour = [];
        private readonly HashSet<string> _folders = [];
        private readonly HashSet<string> _types = [];
        private readonly HashSet<string> _jobKinds = [];

        public static DependencyGraph Read(string path)
        {
            var graph = new DependencyGraph();
            var resolver = new DefaultAssemblyResolver();
            resolver.AddSearchDirectory(Path.GetDirectoryName(path)!);
            using var module = ModuleDefinition.ReadModule(path, new ReaderParameters { AssemblyResolver = resolver });
            foreach (var type in module.Types.Where(t => t.Namespace.StartsWith("QubesWeb", StringComparison.Ordinal)))
            {
                graph._folders.Add(type.Namespace);
                graph._types.Add(type.FullName);
                if (type.Interfaces.Any(i => i.InterfaceType.FullName == "QubesWeb.Services.Jobs.IJobKind")) graph._jobKinds.Add(type.FullName);
                var refs = new HashSet<TypeReference>(new ByName());
                Collect(type, refs);
                foreach (var r in refs)
                {
                    var name = TopLevel(r);
                    if (name is null || name == type.FullName) continue;
                    graph._references.Add(new Reference(type.FullName, name));
                }
            }
            // Which of the hypervisor's types carry behaviour (classes and interfaces that are not records), so that
            // pages may still show its enums and records.
            var hypervisor = typeof(QubesWeb.Hypervisor.Domains.IHypervisor).Assembly.Location;
            using var hv = ModuleDefinition.ReadModule(hypervisor);
            foreach (var t in hv.Types.Where(t => !t.IsEnum && !t.IsValueType && !IsRecord(t) && !IsExceptionType(t)))
                graph._behaviour.Add(t.FullName);
            return graph;
        }

        public bool IsBehaviour(string type) => _behaviour.Contains(type);

        public bool IsJobKind(string type) => _jobKinds.Contains(type);

        public IEnumerable<Reference> References(string fromPrefix) =>
            _references.Where(r => r.From.StartsWith(fromPrefix + ".", StringComparison.Ordinal));

        /// <summary>Strongly connected groups of folders (namespaces of this assembly) larger than one.</summary>
        public List<List<string>> Loops()
        {
            var edges = _folders.ToDictionary(f => f, _ => new HashSet<string>());
            // Only the web project's own types make its folders depend on each other: a reference to another
            // project's type that happens to share a namespace name (QubesWeb.RefusalException) is not an edge.
            foreach (var r in _references.Where(r => _types.Contains(r.To)))
            {
                var from = Namespace(r.From);
                var to = Namespace(r.To);
                if (from != to && _folders.Contains(to)) edges[from].Add(to);
            }
            return Tarjan(edges).Where(c => c.Count > 1).Select(c => c.Order().ToList()).OrderBy(c => c[0]).ToList();
        }

        public string Explain(List<string> loop)
        {
            var set = loop.ToHashSet();
            return string.Join("\n", _references
                .Where(r => _types.Contains(r.To))
                .Where(r => Namespace(r.From) != Namespace(r.To) && set.Contains(Namespace(r.From)) && set.Contains(Namespace(r.To)))
                .GroupBy(r => (Namespace(r.From), Namespace(r.To)))
                .OrderBy(g => g.Key.Item1).ThenBy(g => g.Key.Item2)
                .Select(g => $"    {g.Key.Item1} -> {g.Key.Item2}: {g.First().From} uses {g.First().To}" + (g.Count() > 1 ? $" (+{g.Count() - 1})" : "")));
        }

        private static string Namespace(string fullName) => fullName[..Math.Max(0, fullName.LastIndexOf('.'))];

        private static List<List<string>> Tarjan(Dictionary<string, HashSet<string>> edges)
        {
            var index = new Dictionary<string, int>();
            var low = new Dictionary<string, int>();
            var stack = new Stack<string>();
            var on = new HashSet<string>();
            var result = new List<List<string>>();
            var next = 0;
            void Visit(string v)
            {
                index[v] = low[v] = next++;
                stack.Push(v);
                on.Add(v);
                foreach (var w in edges[v])
                {
                    if (!index.ContainsKey(w)) { Visit(w); low[v] = Math.Min(low[v], low[w]); }
                    else if (on.Contains(w)) low[v] = Math.Min(low[v], index[w]);
                }
                if (low[v] != index[v]) return;
                var component = new List<string>();
                string x;
                do { x = stack.Pop(); on.Remove(x); component.Add(x); } while (x != v);
                result.Add(component);
            }
            foreach (var v in edges.Keys.Order()) if (!index.ContainsKey(v)) Visit(v);
            return result;
        }

        private static bool IsRecord(TypeDefinition t) => t.Methods.Any(m => m.Name == "<Clone>$");

        private static bool IsExceptionType(TypeDefinition t)
        {
            for (var b = t.BaseType; b is not null;)
            {
                if (b.FullName == "System.Exception") return true;
                try { b = b.Resolve()?.BaseType; } catch (AssemblyResolutionException) { return false; }
            }
            return false;
        }

        private static string? TopLevel(TypeReference r)
        {
            while (r is TypeSpecification spec) r = spec.ElementType;
            if (r is GenericParameter) return null;
            while (r.DeclaringType is not null) r = r.DeclaringType;
            return string.IsNullOrEmpty(r.Namespace) ? null : r.FullName;
        }

        private static void Collect(TypeDefinition type, HashSet<TypeReference> refs)
        {
            void Add(TypeReference? t)
            {
                if (t is null) return;
                if (t is GenericInstanceType g) foreach (var a in g.GenericArguments) Add(a);
                if (t is TypeSpecification s) { Add(s.ElementType); return; }
                refs.Add(t);
            }
            void AddMember(MemberReference m)
            {
                switch (m)
                {
                    case MethodReference mr:
                        Add(mr.DeclaringType);
                        Add(mr.ReturnType);
                        foreach (var p in mr.Parameters) Add(p.ParameterType);
                        if (mr is GenericInstanceMethod gm) foreach (var a in gm.GenericArguments) Add(a);
                        break;
                    case FieldReference fr:
                        Add(fr.DeclaringType);
                        Add(fr.FieldType);
                        break;
                    case TypeReference tr:
                        Add(tr);
                        break;
                }
            }
            Add(type.BaseType);
            foreach (var i in type.Interfaces) Add(i.InterfaceType);
            foreach (var a in type.CustomAttributes) Add(a.AttributeType);
            foreach (var f in type.Fields) Add(f.FieldType);
            foreach (var p in type.Properties) { Add(p.PropertyType); foreach (var a in p.CustomAttributes) Add(a.AttributeType); }
            foreach (var m in type.Methods)
            {
                Add(m.ReturnType);
                foreach (var p in m.Parameters) Add(p.ParameterType);
                if (!m.HasBody) continue;
                foreach (var v in m.Body.Variables) Add(v.VariableType);
                foreach (var ins in m.Body.Instructions)
                    if (ins.Operand is MemberReference member) AddMember(member);
            }
            foreach (var nested in type.NestedTypes) Collect(nested, refs);
        }

        private sealed class ByName : IEqualityComparer<TypeReference>
        {
            public bool Equals(TypeReference? x, TypeReference? y) => x?.FullName == y?.FullName;
            public int GetHashCode(TypeReference obj) => obj.FullName.GetHashCode(StringComparison.Ordinal);
        }
    }
}
