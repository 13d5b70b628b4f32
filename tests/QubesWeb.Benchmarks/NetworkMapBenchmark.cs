using System.Globalization;
using QubesWeb.Data.Qubes;
using QubesWeb.Hypervisor.Domains;
using QubesWeb.Services.Estate;

namespace QubesWeb.Benchmarks;

/// <summary>
/// Issue #16: the network map's server time with N qubes (sys-net, sys-firewall behind it, every other AppVM a client
/// of one of them, a third running), through the whole pipeline (GET /network, prerendered), against a minimal page.
/// Goal: under 200 ms at 1000 qubes.
/// </summary>
public static class NetworkMapBenchmark
{
    public static async Task RunAsync(int count)
    {
        using var node = new TestNode();
        await using var host = await ConsoleHost.StartAsync(node.Uri, demo: false);
        Console.WriteLine($"Network map benchmark: {count} qubes on libvirt's test driver, console at {host.BaseUrl}");
        var labels = Label.Defaults.Select(l => l.Name).ToArray();
        var requests = new List<NewQube>
        {
            new("tpl-0", QubeClass.TemplateVM, "black"),
            new("sys-net", QubeClass.AppVM, "red", "tpl-0", ProvidesNetwork: true),
            new("sys-firewall", QubeClass.AppVM, "green", "tpl-0", "sys-net", ProvidesNetwork: true),
        };
        for (var i = requests.Count; i < count; i++)
            requests.Add(new NewQube($"qube-{i:D5}", QubeClass.AppVM, labels[i % labels.Length], "tpl-0", i % 10 == 0 ? "sys-net" : "sys-firewall"));
        await host.Get<Inventory>().CreateAllAsync(requests);
        await host.Get<EstateMonitor>().ReconcileAsync();
        var hypervisor = host.Get<IHypervisor>();
        hypervisor.Start("sys-net");
        hypervisor.Start("sys-firewall");
        for (var i = 3; i < count; i += 3) hypervisor.Start($"qube-{i:D5}");

        using var http = host.SignedInClient();
        async Task Get(string path)
        {
            using var r = await http.GetAsync(path);
            r.EnsureSuccessStatusCode();
            await r.Content.ReadAsByteArrayAsync();
        }
        Console.WriteLine($"GET /network: {(await http.GetByteArrayAsync("/network")).Length / 1024} KiB of prerendered HTML");
        var (baseline, map) = await Measure.AlternateAsync("GET /error (minimal page)", () => Get("/error"), $"GET /network ({count} qubes)", () => Get("/network"), 5, 30);
        Console.WriteLine(baseline);
        Console.WriteLine(map);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"network map: median {map.Median:0} ms, {map.Median / baseline.Median:0.0}x the minimal page   (goal: under 200 ms: {(map.Median < 200 ? "met" : "missed")})"));
    }
}
