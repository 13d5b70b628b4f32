// Issue #16: the start of an AppVM with network against the same AppVM's start without, in the same run: goal at most
// 1.2x (interfaces, links and filters must not make starts slow). The AppVM is one qube whose netvm is switched between
// its provider and none while it is halted (outside the clock); the two starts alternate, so drift in the machine's
// load touches both alike. Each start goes through the console's own start path, the one the pages use
// (QubeCommands.RunAsync(Start): the job's checks, its lock, the netvm chain, the volumes, the first-boot seed, the
// domain's start), timed from the command until the job has ended, and until libvirt says running.
//
// Two hypervisors: the embedded demo (libvirt's test driver: a start costs nothing there, so the figures are the
// console's own work, with untrusted on sys-firewall, which the demo runs) and, with --real, the real-hypervisor
// lane's libvirtd with qemu domains (software emulation), where the networked start also makes a tap on the provider's
// link with its isolated port and clean-traffic filter. There the provider is a qube of the benchmark's own whose
// uplink is a throwaway network (no address, no forwarding) made for the run, so the host's networks are not touched.
using System.Diagnostics;
using QubesWeb.Data.Qubes;
using QubesWeb.Hypervisor.Domains;
using QubesWeb.Hypervisor.Libvirt;
using QubesWeb.Hypervisor.Networks;
using QubesWeb.Services.Estate;
using QubesWeb.Services.Jobs;
using QubesWeb.Services.Networks;
using QubesWeb.Services.Qubes;
using QubesWeb.Services.Templates;

namespace QubesWeb.Benchmarks;

public static class NetworkStartBenchmark
{
    private static readonly TimeSpan JobTimeout = TimeSpan.FromMinutes(2);

    public static async Task RunAsync(bool real, int runs)
    {
        if (!real)
        {
            await using var demo = await ConsoleHost.StartAsync(extraArgs: RealLaneBench.Quiet);
            Console.WriteLine("Network start benchmark: the embedded demo in-process (libvirt's test driver); untrusted (fedora-42) with netvm sys-firewall (running) against netvm none.");
            await MeasureAsync(demo, "untrusted", "sys-firewall", runs);
            return;
        }
        await RealAsync(runs);
    }

    private static async Task RealAsync(int runs)
    {
        await LibvirtDaemon.EnsureRunningAsync();
        // The links' bridges are named after the providers' addresses (qwbr-A-B), which every console hands out from
        // 10.137.0.2 on: another console's links on this daemon would have the same bridges.
        using (var conn = Connect.Open(LibvirtDaemon.Uri))
        {
            var others = conn.ListAllNetworks().Select(n => { using (n) return n.Name; }).Where(LinkSpec.IsLinkName).ToList();
            if (others.Count > 0)
            {
                Console.Error.WriteLine($"{LibvirtDaemon.Uri} has another console's links ({string.Join(", ", others)}): this run's links would take the same bridge names. Run it when they are gone.");
                return;
            }
        }
        var id = Guid.NewGuid().ToString("N")[..8];
        string template = "qwt-bench-tpl-" + id, provider = "qwt-bench-fw-" + id, appVm = "qwt-bench-app-" + id, uplink = "qwt-bench-up-" + id;
        var folder = Directory.CreateTempSubdirectory("qubesweb-bench-image-").FullName;
        using (var conn = Connect.Open(LibvirtDaemon.Uri))
        using (var up = conn.DefineNetworkXml($"<network><name>{uplink}</name><bridge name='qwtup-{id}'/></network>"))
            up.Create();
        ConsoleHost? host = null;
        try
        {
            host = await ConsoleHost.StartAsync(LibvirtDaemon.Uri, demo: false, extraArgs: [.. RealLaneBench.Quiet, "--domain-type", "qemu", $"--Networks:Uplink={uplink}"]);
            await RealLaneBench.ImportBlankTemplateAsync(host, template, folder, JobTimeout);
            await SucceedsAsync(host, JobKind.Create, provider, new CreateQubeRequest(QubeClass.AppVM, "green", template, null, MemoryMiB: 256, VCpus: 1, ProvidesNetwork: true), JobTimeout);
            await SucceedsAsync(host, JobKind.Create, appVm, new CreateQubeRequest(QubeClass.AppVM, "red", template, provider, MemoryMiB: 256, VCpus: 1), JobTimeout);
            Console.WriteLine($"Network start benchmark: the real-hypervisor lane ({LibvirtDaemon.Uri}, qemu domains, software emulation); {appVm} on {template}, with netvm {provider} (running, its uplink {uplink}) against netvm none.");
            await MeasureAsync(host, appVm, provider, runs);
        }
        finally
        {
            if (host is not null)
            {
                foreach (var name in new[] { appVm, provider })
                    if (host.Get<IHypervisor>().GetDomain(name)?.State is { } s && s != RunState.Halted)
                        await JobRuns.RunAsync(host, JobKind.Kill, name, timeout: JobTimeout);
                // Stopped, and its data folder deleted.
                await host.DisposeAsync();
            }
            foreach (var name in new[] { appVm, provider, template }) LibvirtDaemon.Remove(name);
            using (var conn = Connect.Open(LibvirtDaemon.Uri))
                foreach (var net in new[] { LinkSpec.NamePrefix + provider, uplink })
                {
                    using var n = conn.TryLookupNetworkByName(net);
                    if (n is null) continue;
                    if (n.IsActive) n.Destroy();
                    if (n.IsPersistent) n.Undefine();
                }
            Directory.Delete(folder, recursive: true);
        }
    }

    private static async Task MeasureAsync(ConsoleHost host, string appVm, string netvm, int runs)
    {
        var commands = host.Get<QubeCommands>();
        var estate = host.Get<EstateMonitor>();
        var jobs = host.Get<JobEngine>();
        // The netvm runs before any start is timed: a start that also starts its netvm measures another thing.
        if (estate.StateOf(netvm) != RunState.Running)
            await SucceedsAsync(host, JobKind.Start, netvm, timeout: JobTimeout);
        await estate.WaitForStateAsync(netvm, s => s == RunState.Running, JobTimeout, CancellationToken.None);
        if (estate.StateOf(appVm) != RunState.Halted) await SucceedsAsync(host, JobKind.Kill, appVm, timeout: JobTimeout);

        async Task<(double ToEnd, double ToRunning)> StartAsync(string? net)
        {
            // Set while halted: the domain is redefined with (or without) its interface, outside the clock.
            await commands.SavePropertiesAsync(appVm, net is null ? new QubeChanges(ClearNetVm: true) : new QubeChanges(NetVm: net));
            var interfaces = QubeNetwork.InterfacesOf(await host.Get<Inventory>().GetForDomainAsync(appVm), "-").Count;
            if (interfaces != (net is null ? 0 : 1)) throw new InvalidOperationException($"{appVm} has {interfaces} interface(s) with netvm {net ?? "none"}.");
            var clock = Stopwatch.StartNew();
            var job = await commands.RunAsync(appVm, LifecycleAction.Start);
            await estate.WaitForStateAsync(appVm, s => s == RunState.Running, JobTimeout, CancellationToken.None);
            var toRunning = clock.Elapsed.TotalMilliseconds;
            using (var cts = new CancellationTokenSource(JobTimeout)) JobRuns.Succeeded(await jobs.WaitAsync(job.Id, cts.Token));
            var toEnd = clock.Elapsed.TotalMilliseconds;
            await SucceedsAsync(host, JobKind.Kill, appVm, timeout: JobTimeout);
            return (toEnd, toRunning);
        }

        List<double> withEnd = [], withRunning = [], noneEnd = [], noneRunning = [];
        for (var i = 0; i < runs + 2; i++)
        {
            var a = await StartAsync(netvm);
            var b = await StartAsync(null);
            var warmup = i < 2;
            if (runs <= 20 || i % 10 == 0 || warmup)
                Console.WriteLine($"  run {i}{(warmup ? " (warm-up)" : "")}: with netvm {a.ToEnd,7:0.0} ms, none {b.ToEnd,7:0.0} ms (job ended)");
            if (warmup) continue;
            withEnd.Add(a.ToEnd);
            withRunning.Add(a.ToRunning);
            noneEnd.Add(b.ToEnd);
            noneRunning.Add(b.ToRunning);
        }
        // Left as the run found it.
        await commands.SavePropertiesAsync(appVm, new QubeChanges(NetVm: netvm));

        Console.WriteLine();
        Console.WriteLine($"{runs} starts each, alternating (median, p95):");
        Console.WriteLine("  " + new Sample($"with netvm {netvm}: to job end", [.. withEnd]));
        Console.WriteLine("  " + new Sample("netvm none: to job end", [.. noneEnd]));
        Console.WriteLine("  " + new Sample($"with netvm {netvm}: to running", [.. withRunning]));
        Console.WriteLine("  " + new Sample("netvm none: to running", [.. noneRunning]));
        CopyBenchmark.Ratio("with network / without, to job end", withEnd, noneEnd, 1.2);
        CopyBenchmark.Ratio("with network / without, to running", withRunning, noneRunning, 1.2);
        var p95 = new Sample("", [.. withEnd]).P95 / new Sample("", [.. noneEnd]).P95;
        Console.WriteLine($"  ratio of the p95s, to job end: {p95:0.00}x");
    }
}
