// A disposable's launch (enqueue to running) against the start of an AppVM on the same template in the same run: goal
// at most 1.2x. A launch that takes a preloaded disposable (preload-dispvm-max): goal at most 0.2x of that AppVM start.
// The launch makes the qube (row, private volume, domain) before it starts it, with a copy of its disposable template's
// private volume; the preloaded one only resumes.
//
// Two hypervisors: the embedded demo (libvirt's test driver, whose "start" costs nothing, so the figures are the
// console's own bookkeeping) and, with --real, the real-hypervisor lane's libvirtd with qemu domains (software
// emulation, as the lane's tests), where a start launches a qemu process as on a host. There the template is imported
// from a blank disk image: "running" is libvirt's state once qemu runs, whatever the guest then does.
using System.Diagnostics;
using QubesWeb.Data.Qubes;
using QubesWeb.Hypervisor.Domains;
using QubesWeb.Services.Disposables;
using QubesWeb.Services.Estate;
using QubesWeb.Services.Jobs;
using QubesWeb.Services.Qubes;
using QubesWeb.Services.Templates;

namespace QubesWeb.Benchmarks;

public static class DisposableBenchmark
{
    private static readonly TimeSpan JobTimeout = TimeSpan.FromMinutes(2);

    public static async Task RunAsync(bool real, int runs = 15)
    {
        if (!real)
        {
            await using var demo = await ConsoleHost.StartAsync(extraArgs: RealLaneBench.Quiet);
            Console.WriteLine("Disposable benchmark: the embedded demo in-process; untrusted and default-dvm's disposables both on fedora-42, netvm sys-firewall (running).");
            await MeasureAsync(demo, "untrusted", "default-dvm", runs);
            return;
        }
        await LibvirtDaemon.EnsureRunningAsync();
        var id = Guid.NewGuid().ToString("N")[..8];
        string template = "qwt-bench-tpl-" + id, appVm = "qwt-bench-app-" + id, dvm = "qwt-bench-dvm-" + id;
        var folder = Directory.CreateTempSubdirectory("qubesweb-bench-image-").FullName;
        await using var host = await ConsoleHost.StartAsync(LibvirtDaemon.Uri, demo: false, extraArgs: [.. RealLaneBench.Quiet, "--domain-type", "qemu"]);
        var made = new List<string> { template, appVm, dvm };
        try
        {
            await RealLaneBench.ImportBlankTemplateAsync(host, template, folder, JobTimeout);
            await SucceedsAsync(host, JobKind.Create, appVm, new CreateQubeRequest(QubeClass.AppVM, "red", template, null, MemoryMiB: 256, VCpus: 1), JobTimeout);
            await SucceedsAsync(host, JobKind.Create, dvm, new CreateQubeRequest(QubeClass.AppVM, "red", template, null, MemoryMiB: 256, VCpus: 1), JobTimeout);
            await host.Get<DisposableCommands>().SetDispTemplateAsync(dvm, true);
            Console.WriteLine($"Disposable benchmark: the real-hypervisor lane ({LibvirtDaemon.Uri}, qemu domains, software emulation); {appVm} and {dvm}'s disposables both on {template}, no netvm.");
            await MeasureAsync(host, appVm, dvm, runs);
        }
        finally
        {
            // The console removes a disposable once it stops, but not the preloaded one still paused; its domain goes too.
            made.AddRange((await host.Get<Inventory>().ListAsync()).Where(q => q.Class == QubeClass.DispVM).Select(q => q.Name));
            await host.StopAsync();
            foreach (var name in made) LibvirtDaemon.Remove(name);
            Directory.Delete(folder, recursive: true);
        }
    }

    private static async Task MeasureAsync(ConsoleHost host, string appVm, string dvm, int runs)
    {
        var inventory = host.Get<Inventory>();
        var commands = host.Get<DisposableCommands>();
        var estate = host.Get<EstateMonitor>();
        var appStarts = new List<double>();
        var launches = new List<double>();
        List<QubesWeb.Data.Jobs.JobLogLine> lastLaunchLog = [];
        List<double> queued = [], ran = [];
        for (var i = 0; i < runs + 1; i++)
        {
            var a = await ToRunningAsync(estate, async () => (await host.Get<JobEngine>().EnqueueAsync(JobKind.Start, appVm)).Id, appVm);
            await JobRuns.FinishedAsync(host, (await host.Get<JobEngine>().QueryAsync(new JobQuery { Target = appVm, Take = 1 })).Single().Id, JobTimeout);
            await SucceedsAsync(host, JobKind.Kill, appVm, timeout: JobTimeout);
            string name = "";
            long launchId = 0;
            var l = await TimedAsync(async () => { var job = await commands.LaunchAsync(dvm); (name, launchId) = (job.Target, job.Id); await estate.WaitForStateAsync(name, s => s == RunState.Running, JobTimeout, CancellationToken.None); return job; });
            JobRuns.Succeeded(await JobRuns.FinishedAsync(host, launchId, JobTimeout));
            var done = (await host.Get<JobEngine>().GetAsync(launchId))!;
            lastLaunchLog = done.Log.OrderBy(x => x.Id).ToList();
            queued.Add((done.StartedUtc!.Value - done.CreatedUtc).TotalMilliseconds);
            ran.Add((done.FinishedUtc!.Value - done.StartedUtc!.Value).TotalMilliseconds);
            await SucceedsAsync(host, JobKind.Kill, name, timeout: JobTimeout);
            await GoneAsync(inventory, name);
            Console.WriteLine($"  run {i}{(i == 0 ? " (warm-up)" : "")}: AppVM start {a,6:0.0} ms, disposable launch {l,6:0.0} ms");
            if (i == 0) continue;
            appStarts.Add(a);
            launches.Add(l);
        }

        await host.Get<QubeCommands>().SavePropertiesAsync(dvm, new QubeChanges(Features: new Dictionary<string, string?> { [DisposableFeatures.PreloadMax] = "1" }));
        var preloaded = new List<double>();
        for (var i = 0; i < runs + 1; i++)
        {
            await WaitPreloadedAsync(inventory, estate, host.Get<JobEngine>(), dvm);
            string name = "";
            long pid = 0;
            var p = await TimedAsync(async () => { var job = await commands.LaunchAsync(dvm); (name, pid) = (job.Target, job.Id); await estate.WaitForStateAsync(name, s => s == RunState.Running, JobTimeout, CancellationToken.None); return job; });
            JobRuns.Succeeded(await JobRuns.FinishedAsync(host, pid, JobTimeout));
            var kind = (await host.Get<JobEngine>().QueryAsync(new JobQuery { Target = name, Take = 1 })).Single().Kind;
            await SucceedsAsync(host, JobKind.Kill, name, timeout: JobTimeout);
            await GoneAsync(inventory, name);
            Console.WriteLine($"  run {i}{(i == 0 ? " (warm-up)" : "")}: launch of a preloaded disposable {p,6:0.0} ms ({kind})");
            if (i > 0) preloaded.Add(p);
        }

        Console.WriteLine();
        Console.WriteLine("Enqueue to running (the qube seen running; its job then writes its end):");
        CopyBenchmark.Line($"AppVM start ({appVm})", appStarts);
        CopyBenchmark.Line("disposable launch (made, then started)", launches);
        CopyBenchmark.Line("launch of a preloaded disposable (resumed)", preloaded);
        CopyBenchmark.Ratio("disposable launch / AppVM start", launches, appStarts, 1.2);
        CopyBenchmark.Ratio("preloaded launch / AppVM start", preloaded, appStarts, 0.2);
        CopyBenchmark.Line("  of a launch: queued to started", queued);
        CopyBenchmark.Line("  of a launch: started to finished", ran);
        Console.WriteLine("  the last launch's log:");
        foreach (var x in lastLaunchLog) Console.WriteLine($"    {(x.TimeUtc - lastLaunchLog[0].TimeUtc).TotalMilliseconds,6:0} ms  {x.Text}");
    }

    /// <summary>From the call that queues the work until the qube is seen running (the job may still write its end).</summary>
    private static async Task<double> TimedAsync(Func<Task<QubesWeb.Data.Jobs.Job>> run)
    {
        var clock = Stopwatch.StartNew();
        await run();
        return clock.Elapsed.TotalMilliseconds;
    }

    private static async Task<double> ToRunningAsync(EstateMonitor estate, Func<Task<long>> enqueue, string name)
    {
        var clock = Stopwatch.StartNew();
        await enqueue();
        await estate.WaitForStateAsync(name, s => s == RunState.Running, JobTimeout, CancellationToken.None);
        return clock.Elapsed.TotalMilliseconds;
    }

    private static async Task GoneAsync(Inventory inventory, string name)
    {
        var deadline = DateTime.UtcNow + JobTimeout;
        while (await inventory.FindAsync(name) is not null)
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"{name} was not removed.");
            await Task.Delay(20);
        }
    }

    private static async Task WaitPreloadedAsync(Inventory inventory, EstateMonitor estate, JobEngine jobs, string dvm)
    {
        var deadline = DateTime.UtcNow + JobTimeout;
        // Paused, and its preload job over (until then the job holds it and a launch makes a new one).
        while (!(await inventory.ListAsync()).Any(q => q.IsPreloaded && q.Template?.Name == dvm && estate.StateOf(q) == RunState.Paused
                                                       && !jobs.IsLockedAsync(q.Name).Result))
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException("No disposable was preloaded.");
            await Task.Delay(20);
        }
    }
}
