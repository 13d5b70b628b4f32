// Disposables on the console's embedded demo (the test driver): a launch makes and starts dispNNNN from a disposable
// template with that template's settings, its root a snapshot of the template's template and its private a copy of
// the disposable template's; a stop in any way removes it without a trace; the rules of disposable templates.
using Microsoft.EntityFrameworkCore;
using QubesWeb.Data;
using QubesWeb.Data.Jobs;
using QubesWeb.Data.Qubes;
using QubesWeb.Hypervisor.Domains;
using QubesWeb.Hypervisor.Storage;
using QubesWeb.Services.Disposables;
using QubesWeb.Services.Estate;
using QubesWeb.Services.Qubes;
using QubesWeb.Services.Storage;
using InventoryService = QubesWeb.Data.Qubes.Inventory;

namespace QubesWeb.IntegrationTests.QubeTests;

public sealed class DisposableTests
{
    private const string Dvm = "default-dvm";

    private static async Task<string> LaunchAsync(ConsoleHost host, string? dvm = null)
    {
        var job = Succeeded(await FinishedAsync(host, (await host.Get<DisposableCommands>().LaunchAsync(dvm)).Id));
        return job.Target;
    }

    /// <summary>No row, no domain, no folder in the pool: nothing of it is left.</summary>
    private static Task GoneAsync(ConsoleHost host, string name) =>
        Eventually.UntilAsync(async () => await host.Get<InventoryService>().FindAsync(name) is null
                                          && host.Get<IHypervisor>().GetDomain(name) is null
                                          && !Directory.Exists(Path.Combine(host.PoolDir, name)),
            $"{name} to be removed with its files", JobRuns.DefaultTimeout,
            () => $"row: {host.Get<InventoryService>().FindAsync(name).Result is not null}, domain: {host.Get<IHypervisor>().GetDomain(name)?.State}, folder: {Directory.Exists(Path.Combine(host.PoolDir, name))}");

    [Fact]
    public async Task A_launch_runs_a_disposable_with_its_templates_settings_root_and_private_and_a_shutdown_leaves_nothing()
    {
        await using var host = await ConsoleHost.StartAsync();
        var inventory = host.Get<InventoryService>();
        var dvm = await inventory.GetAsync(Dvm);

        var name = await LaunchAsync(host);

        Assert.Matches("^disp[0-9]{1,4}$", name);
        var disp = await inventory.GetAsync(name);
        Assert.Equal(QubeClass.DispVM, disp.Class);
        Assert.Equal(Dvm, disp.Template?.Name);
        Assert.Equal((dvm.Label.Name, dvm.NetVm?.Name, dvm.MemoryMiB, dvm.VCpus), (disp.Label.Name, disp.NetVm?.Name, disp.MemoryMiB, disp.VCpus));
        Assert.True(disp.AutoCleanup);
        Assert.Null(disp.Feature(DisposableFeatures.TemplateForDispvms));
        Assert.Null(disp.Feature("internal"));
        Assert.Equal(RunState.Running, host.Get<EstateMonitor>().StateOf(name));
        // Its root is a snapshot of fedora-42's current revision; its private reads as default-dvm's.
        var fedora = await inventory.GetAsync("fedora-42");
        var root = disp.Volumes.Single(v => v.Kind == VolumeKind.Root);
        Assert.Equal(fedora.Volumes.Single(v => v.Kind == VolumeKind.Root).Id, root.OverlaySourceVolumeId);
        var priv = disp.Volumes.Single(v => v.Kind == VolumeKind.Private).Path!;
        Assert.Equal(0, (await ProcessRunner.RunAsync("qemu-img", ["compare", "-q", "-f", "qcow2", "-F", "qcow2",
            dvm.Volumes.Single(v => v.Kind == VolumeKind.Private).Path!, priv])).ExitCode);
        Assert.Equal(name, (await host.Get<QubeQueries>().RowsAsync()).Single(r => r.Name == name).Name);

        await SucceedsAsync(host, JobKind.Shutdown, name);
        await GoneAsync(host, name);
        // Its disposable template is untouched.
        Assert.NotNull(await inventory.FindAsync(Dvm));
    }

    [Fact]
    public async Task A_disposable_is_removed_however_it_stops_a_kill_a_stop_outside_the_console_or_a_power_off_by_its_guest()
    {
        await using var host = await ConsoleHost.StartAsync();
        var hypervisor = host.Get<IHypervisor>();
        string killed = await LaunchAsync(host), destroyed = await LaunchAsync(host), poweredOff = await LaunchAsync(host);

        await SucceedsAsync(host, JobKind.Kill, killed);
        hypervisor.Kill(destroyed);        // virsh destroy
        hypervisor.Shutdown(poweredOff);   // the guest powering itself off (the test driver stops at once)

        await GoneAsync(host, killed);
        await GoneAsync(host, destroyed);
        await GoneAsync(host, poweredOff);
    }

    [Fact]
    public async Task A_disposable_left_halted_by_a_console_that_stopped_is_removed_at_its_next_start()
    {
        var dataDir = ConsoleHost.NewDataDir();
        string name;
        var first = await ConsoleHost.StartAsync(dataDir: dataDir);
        name = await LaunchAsync(first);
        await first.StopAsync(); // keeps the data folder
        // The test driver forgot the running domain with the process, as a host does at a reboot: the inventory still has it.
        await using var second = await ConsoleHost.StartAsync(dataDir: dataDir);
        await GoneAsync(second, name);
    }

    [Fact]
    public async Task A_name_used_by_a_disposable_in_the_last_day_is_not_given_again_and_is_free_for_a_qube_of_the_users()
    {
        await using var host = await ConsoleHost.StartAsync();
        var name = await LaunchAsync(host);
        await SucceedsAsync(host, JobKind.Kill, name);
        await GoneAsync(host, name);

        // Every other number was given out today: the only free one is picked, never the one just removed.
        await using (var db = await host.Get<IDbContextFactory<InventoryDbContext>>().CreateDbContextAsync())
        {
            var free = name == "disp4242" ? "disp4243" : "disp4242";
            db.Jobs.AddRange(Enumerable.Range(0, DisposableCommands.NumberCount).Select(i => "disp" + i).Where(n => n != free && n != name)
                .Select(n => new Job { Kind = JobKind.LaunchDisposable.Name, Target = n, State = JobState.Succeeded, CreatedUtc = DateTime.UtcNow }));
            await db.SaveChangesAsync();
            Assert.Equal(free, await host.Get<DisposableCommands>().NewNameAsync());
        }
        // The user may still call a qube of theirs so.
        await SucceedsAsync(host, JobKind.Create, name, new CreateQubeRequest(QubeClass.AppVM, "red", "fedora-42", null));
    }

    [Fact]
    public async Task A_disposable_template_with_disposables_cannot_stop_being_one_be_removed_or_switched_while_they_run()
    {
        await using var host = await ConsoleHost.StartAsync();
        var commands = host.Get<DisposableCommands>();
        var name = await LaunchAsync(host);

        var off = await Assert.ThrowsAsync<QubeRuleException>(() => commands.SetDispTemplateAsync(Dvm, false));
        Assert.Equal($"'{Dvm}' is the disposable template of {name}; remove them before it stops being one.", off.Message);
        var remove = await Assert.ThrowsAsync<QubeRuleException>(() => host.Get<QubeCommands>().RemoveAsync(Dvm));
        Assert.Contains($"'{Dvm}' is the template of 1 qube(s): {name}.", remove.Message);
        var switching = await Assert.ThrowsAsync<QubeRuleException>(() => host.Get<QubeCommands>().SavePropertiesAsync(Dvm, new QubeChanges(Template: "debian-13")));
        Assert.Equal($"Disposables based on '{Dvm}' are running: {name}. Shut them down before switching its template.", switching.Message);
        Assert.True((await host.Get<InventoryService>().GetAsync(Dvm)).IsDisposableTemplate);
        Assert.Equal("fedora-42", (await host.Get<InventoryService>().GetAsync(Dvm)).Template?.Name);

        await SucceedsAsync(host, JobKind.Kill, name);
        await GoneAsync(host, name);
        await commands.SetDispTemplateAsync(Dvm, false);
        Assert.False((await host.Get<InventoryService>().GetAsync(Dvm)).IsDisposableTemplate);
        // It was the default: there is none now, and a launch says what to do.
        Assert.Null(await commands.DefaultAsync());
        var none = await Assert.ThrowsAsync<QubeRuleException>(() => commands.LaunchAsync(null));
        Assert.StartsWith("There is no default disposable template", none.Message);
    }

    [Fact]
    public async Task Launches_are_refused_from_a_qube_that_is_no_disposable_template_or_one_that_runs_and_the_default_is_settable()
    {
        await using var host = await ConsoleHost.StartAsync();
        var commands = host.Get<DisposableCommands>();
        var notOne = await Assert.ThrowsAsync<QubeRuleException>(() => commands.LaunchAsync("work"));
        Assert.Equal("'work' is not a disposable template; turn on \"Disposable template\" on its page first.", notOne.Message);
        var template = await Assert.ThrowsAsync<QubeRuleException>(() => commands.LaunchAsync("fedora-42"));
        Assert.Contains("is a TemplateVM; disposables are made from an AppVM", template.Message);

        await commands.SetDispTemplateAsync("untrusted", true);
        await commands.SetDefaultAsync("untrusted");
        Assert.Equal("untrusted", await commands.DefaultAsync());
        Assert.Equal(["untrusted", Dvm], (await commands.TemplatesAsync()).Select(t => t.Name));
        await SucceedsAsync(host, JobKind.Start, "untrusted");
        var running = await Assert.ThrowsAsync<QubeRuleException>(() => commands.LaunchAsync(null));
        Assert.Equal("'untrusted' is running, so its private volume is being written, and no snapshot of it was made before; shut 'untrusted' down first.", running.Message);
        var notDefault = await Assert.ThrowsAsync<QubeRuleException>(() => commands.SetDefaultAsync("work"));
        Assert.StartsWith("'work' is not a disposable template", notDefault.Message);
    }

    [Fact]
    public async Task While_its_disposable_template_runs_a_launch_starts_from_the_snapshot_of_its_last_stop_and_disposables_share_one_snapshot()
    {
        await using var host = await ConsoleHost.StartAsync();
        var first = await LaunchAsync(host);
        var second = await LaunchAsync(host);
        var dvmFolder = Path.Combine(host.PoolDir, Dvm);
        // One snapshot of default-dvm's private serves both: each disposable's private is a thin overlay on it.
        var snapshot = Assert.Single(DispvmPrivates.Generations(dvmFolder).Values);
        foreach (var d in new[] { first, second })
        {
            var priv = (await host.Get<InventoryService>().GetAsync(d)).Volumes.Single(v => v.Kind == VolumeKind.Private).Path!;
            Assert.Equal(snapshot, (await QemuImg.InfoAsync(priv)).BackingFile);
        }

        await SucceedsAsync(host, JobKind.Start, Dvm);
        var third = await LaunchAsync(host);
        var priv3 = (await host.Get<InventoryService>().GetAsync(third)).Volumes.Single(v => v.Kind == VolumeKind.Private).Path!;
        Assert.Equal(snapshot, (await QemuImg.InfoAsync(priv3)).BackingFile);
        await SucceedsAsync(host, JobKind.Shutdown, Dvm);

        // default-dvm wrote its private volume: the next launch takes a new snapshot; the old one goes once no disposable uses it.
        File.SetLastWriteTimeUtc(Path.Combine(dvmFolder, "private.qcow2"), DateTime.UtcNow);
        foreach (var d in new[] { first, second, third }) await SucceedsAsync(host, JobKind.Kill, d);
        foreach (var d in new[] { first, second, third }) await GoneAsync(host, d);
        var fourth = await LaunchAsync(host);
        var now = Assert.Single(DispvmPrivates.Generations(dvmFolder).Values);
        Assert.NotEqual(snapshot, now);
        Assert.Equal(now, (await QemuImg.InfoAsync((await host.Get<InventoryService>().GetAsync(fourth)).Volumes.Single(v => v.Kind == VolumeKind.Private).Path!)).BackingFile);
    }

    [Fact]
    public async Task A_named_disposable_is_kept_when_it_stops_and_gets_a_fresh_copy_of_its_templates_private_at_each_start()
    {
        await using var host = await ConsoleHost.StartAsync();
        await SucceedsAsync(host, JobKind.Create, "sys-usb2", new CreateQubeRequest(QubeClass.DispVM, "red", Dvm, null));
        var inventory = host.Get<InventoryService>();
        Assert.False((await inventory.GetAsync("sys-usb2")).AutoCleanup);
        await SucceedsAsync(host, JobKind.Start, "sys-usb2");
        var priv = (await inventory.GetAsync("sys-usb2")).Volumes.Single(v => v.Kind == VolumeKind.Private).Path!;
        await QemuImg.WritePatternAsync(priv, 0x77, 0, 1 << 20);
        await SucceedsAsync(host, JobKind.Shutdown, "sys-usb2");
        await SucceedsAsync(host, JobKind.Start, "sys-usb2");

        Assert.NotNull(await inventory.FindAsync("sys-usb2"));
        var dvmPrivate = (await inventory.GetAsync(Dvm)).Volumes.Single(v => v.Kind == VolumeKind.Private).Path!;
        Assert.Equal(0, (await ProcessRunner.RunAsync("qemu-img", ["compare", "-q", "-f", "qcow2", "-F", "qcow2", dvmPrivate, priv])).ExitCode);
    }

    [Fact]
    public async Task A_running_disposable_is_outdated_once_its_disposable_templates_private_or_its_templates_root_changed()
    {
        await using var host = await ConsoleHost.StartAsync();
        var queries = host.Get<QubeQueries>();
        var name = await LaunchAsync(host);
        Assert.Equal(RootStaleness.Current, (await queries.RowsAsync()).Single(r => r.Name == name).Staleness);

        // default-dvm ran and wrote its private volume after the copy was made.
        var dvmPrivate = (await host.Get<InventoryService>().GetAsync(Dvm)).Volumes.Single(v => v.Kind == VolumeKind.Private).Path!;
        File.SetLastWriteTimeUtc(dvmPrivate, DateTime.UtcNow.AddSeconds(5));
        host.Get<EstateMonitor>().InventoryChanged();
        await Eventually.UntilAsync(async () => (await queries.RowsAsync()).Single(r => r.Name == name).Staleness == RootStaleness.Outdated,
            $"{name} to be outdated");

        await SucceedsAsync(host, JobKind.Kill, name);
        await GoneAsync(host, name);
        File.SetLastWriteTimeUtc(dvmPrivate, DateTime.UtcNow.AddMinutes(-1));
        var second = await LaunchAsync(host);
        Assert.Equal(RootStaleness.Current, (await queries.RowsAsync()).Single(r => r.Name == second).Staleness);
        // fedora-42 updated: a new revision committed.
        await SucceedsAsync(host, JobKind.Start, "fedora-42");
        await QemuImg.WritePatternAsync((await host.Get<InventoryService>().GetAsync("fedora-42")).Volumes.Single(v => v.Kind == VolumeKind.Root).Path!, 0x42, 0, 1 << 20);
        await SucceedsAsync(host, JobKind.Shutdown, "fedora-42");
        await Eventually.UntilAsync(async () => (await queries.RowsAsync()).Single(r => r.Name == second).Staleness == RootStaleness.Outdated,
            $"{second} to be outdated after fedora-42's update");
    }

    /// <summary>The preloaded disposables of default-dvm that wait, once exactly <paramref name="count"/> wait paused.</summary>
    private static async Task<List<Qube>> PreloadedAsync(ConsoleHost host, int count)
    {
        List<Qube> waiting = [];
        await Eventually.UntilAsync(async () =>
        {
            waiting = (await host.Get<InventoryService>().ListAsync()).Where(q => q.IsPreloaded && q.Template?.Name == Dvm).ToList();
            return waiting.Count == count && waiting.All(q => host.Get<EstateMonitor>().StateOf(q) == RunState.Paused);
        }, $"{count} disposable(s) of {Dvm} to wait preloaded", JobRuns.DefaultTimeout,
            () => string.Join(", ", waiting.Select(q => $"{q.Name} {host.Get<EstateMonitor>().StateOf(q)}")));
        return waiting;
    }

    private static Task SetFeatureAsync(ConsoleHost host, string qube, string key, string? value) =>
        host.Get<QubeCommands>().SavePropertiesAsync(qube, new QubeChanges(Features: new Dictionary<string, string?> { [key] = value }));

    [Fact]
    public async Task With_preload_dispvm_max_a_disposable_waits_paused_and_hidden_and_a_launch_hands_it_out_once_then_another_is_preloaded()
    {
        await using var host = await ConsoleHost.StartAsync();
        await SetFeatureAsync(host, Dvm, DisposableFeatures.PreloadMax, "1");
        var preloaded = (await PreloadedAsync(host, 1)).Single();
        Assert.Equal("1", preloaded.Feature("internal"));
        Assert.DoesNotContain(preloaded.Name, (await host.Get<QubeQueries>().RowsAsync()).Where(r => !r.Internal).Select(r => r.Name));

        // Two launches at once: one gets the preloaded disposable, resumed; the other a new one. Never both the same.
        var commands = host.Get<DisposableCommands>();
        var launches = await Task.WhenAll(commands.LaunchAsync(Dvm), commands.LaunchAsync(Dvm));
        var handedOut = Assert.Single(launches, j => JobKind.Resume.Is(j));
        Assert.Equal(preloaded.Name, handedOut.Target);
        Assert.True(JobKind.LaunchDisposable.Is(Assert.Single(launches, j => !JobKind.Resume.Is(j))));
        Assert.NotEqual(launches[0].Target, launches[1].Target);
        foreach (var j in launches) Succeeded(await FinishedAsync(host, j.Id));
        var taken = await host.Get<InventoryService>().GetAsync(preloaded.Name);
        Assert.Equal(RunState.Running, host.Get<EstateMonitor>().StateOf(taken));
        Assert.False(taken.IsPreloaded);
        Assert.Null(taken.Feature("internal"));
        Assert.True(taken.AutoCleanup);

        // The next one is preloaded in its place.
        var next = (await PreloadedAsync(host, 1)).Single();
        Assert.DoesNotContain(next.Name, launches.Select(j => j.Target));
    }

    [Fact]
    public async Task A_preloaded_disposable_is_replaced_when_its_template_changes_and_after_a_console_restart_and_let_go_when_the_feature_goes()
    {
        var dataDir = ConsoleHost.NewDataDir();
        var first = await ConsoleHost.StartAsync(dataDir: dataDir);
        await SetFeatureAsync(first, Dvm, DisposableFeatures.PreloadMax, "1");
        var old = (await PreloadedAsync(first, 1)).Single();

        // A new label for default-dvm: the waiting one is not what a launch makes now.
        await first.Get<QubeCommands>().SavePropertiesAsync(Dvm, new QubeChanges(Label: "purple"));
        await GoneAsync(first, old.Name);
        var relabelled = (await PreloadedAsync(first, 1)).Single();
        Assert.Equal("purple", relabelled.Label.Name);
        await first.StopAsync();

        // The test driver forgot the paused domain with the process: the next start removes it and preloads anew.
        await using var second = await ConsoleHost.StartAsync(dataDir: dataDir);
        await GoneAsync(second, relabelled.Name);
        var again = (await PreloadedAsync(second, 1)).Single();

        await SetFeatureAsync(second, Dvm, DisposableFeatures.PreloadMax, null);
        await GoneAsync(second, again.Name);
        await PreloadedAsync(second, 0);
    }

    [Fact]
    public async Task A_preload_that_fails_leaves_nothing_and_is_tried_again()
    {
        await using var host = await ConsoleHost.StartAsync();
        var dvmPrivate = (await host.Get<InventoryService>().GetAsync(Dvm)).Volumes.Single(v => v.Kind == VolumeKind.Private).Path!;
        var aside = dvmPrivate + ".aside";
        File.Move(dvmPrivate, aside);
        await SetFeatureAsync(host, Dvm, DisposableFeatures.PreloadMax, "1");

        // Its private volume is missing: the preload fails, and what it made is taken away.
        Job? failed = null;
        await Eventually.UntilAsync(async () => (failed = (await host.Get<Services.Jobs.JobEngine>().QueryAsync(new Services.Jobs.JobQuery { States = [JobState.Failed] }))
            .FirstOrDefault(j => JobKind.LaunchDisposable.Is(j))) is not null, "a preload to fail");
        Assert.Null(await host.Get<InventoryService>().FindAsync(failed!.Target));
        Assert.False(Directory.Exists(Path.Combine(host.PoolDir, failed.Target)));

        File.Move(aside, dvmPrivate);
        var preloaded = (await PreloadedAsync(host, 1)).Single();
        Assert.NotEqual(failed.Target, preloaded.Name);
    }
}
