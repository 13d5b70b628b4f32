using System.Globalization;
using System.Xml.Linq;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using QubesWeb.Data;
using QubesWeb.Data.Qubes;
using QubesWeb.Hypervisor.Domains;
using QubesWeb.Hypervisor.Libvirt;
using QubesWeb.Services.Estate;

namespace QubesWeb.Benchmarks;

/// <summary>
/// Issue #2: reconcile N domains defined on a test-driver node, against the raw binding listing the same N domains
/// with their state, in the same run. Goal: at most 3x.
/// </summary>
public static class ReconcileBenchmark
{
    public static async Task RunAsync(int count)
    {
        var dir = Path.Combine(Path.GetTempPath(), "qubesweb-bench-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            Console.WriteLine($"Reconcile benchmark: {count} domains on libvirt's test driver, inventory on SQLite ({dir})");
            var services = new ServiceCollection().AddLogging().AddInventory(Path.Combine(dir, "qubesweb.db")).BuildServiceProvider();
            var contexts = services.GetRequiredService<IDbContextFactory<InventoryDbContext>>();
            await using (var db = await contexts.CreateDbContextAsync()) await db.Database.MigrateAsync();
            var inventory = services.GetRequiredService<Inventory>();
            await inventory.EnsureAdminVmAsync();

            // The inventory: one template and count-1 AppVMs based on it, all with the UUIDs the node file will carry.
            var requests = new List<NewQube> { new("tpl-0", QubeClass.TemplateVM, "black", Uuid: Guid.NewGuid()) };
            var labels = Label.Defaults.Select(l => l.Name).ToArray();
            for (var i = 1; i < count; i++)
                requests.Add(new NewQube($"qube-{i:D5}", QubeClass.AppVM, labels[i % labels.Length], "tpl-0", Uuid: Guid.NewGuid()));
            await inventory.CreateAllAsync(requests);

            // The node: the same domains, about a third running, as a host with a busy estate.
            XNamespace test = "http://libvirt.org/schemas/domain/test/1.0";
            var node = new XElement("node", requests.Select((r, i) =>
                new XElement("domain", new XAttribute("type", "test"), new XAttribute(XNamespace.Xmlns + "test", test.NamespaceName),
                    new XElement("name", r.Name), new XElement("uuid", r.Uuid!.Value.ToString("D")),
                    new XElement("memory", new XAttribute("unit", "MiB"), 400), new XElement("vcpu", 2),
                    new XElement("os", new XElement("type", "hvm")),
                    new XElement(test + "runstate", i % 3 == 0 ? 1 : 5))));
            var nodeFile = Path.Combine(dir, "node.xml");
            node.Save(nodeFile);
            var uri = "test://" + nodeFile;

            using var hypervisor = new LibvirtHypervisor(Options.Create(new HypervisorOptions { Uri = uri }), NullLogger<LibvirtHypervisor>.Instance);
            hypervisor.Open();
            using var monitor = new EstateMonitor(hypervisor, inventory, new DomainDefinitions(inventory, hypervisor), NullLogger<EstateMonitor>.Instance);
            var first = await monitor.ReconcileAsync();
            if (first.Defined.Count != 0 || first.Unmanaged.Count != 0)
                throw new InvalidOperationException($"Setup is wrong: defined {first.Defined.Count}, unmanaged {first.Unmanaged.Count}.");

            // Baseline: the raw binding on its own connection to the same node lists every domain with its state.
            using var raw = Connect.Open(uri);
            var seen = 0;
            Task RawList()
            {
                var n = 0;
                foreach (var d in raw.ListAllDomains())
                    using (d)
                    {
                        _ = d.Name;
                        if (d.GetState().State == DomainState.Running) n++;
                    }
                seen = n;
                return Task.CompletedTask;
            }

            var (baseline, reconcile) = await Measure.AlternateAsync(
                $"raw binding: list {count} + state", RawList,
                $"reconcile {count} qubes", () => monitor.ReconcileAsync(),
                warmup: 10, runs: 60);
            Console.WriteLine(baseline);
            Console.WriteLine(reconcile);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"ratio reconcile/raw: median {reconcile.Median / baseline.Median:0.00}x   p95 {reconcile.P95 / baseline.P95:0.00}x   (goal <= 3x; {seen} running)"));
        }
        finally
        {
            Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
            Directory.Delete(dir, recursive: true);
        }
    }
}
