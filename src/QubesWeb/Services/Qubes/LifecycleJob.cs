using Microsoft.EntityFrameworkCore;
using QubesWeb.Data.Qubes;
using QubesWeb.Hypervisor.Domains;
using QubesWeb.Services.Estate;
using QubesWeb.Services.Storage;

using QubesWeb.Services.Jobs;

namespace QubesWeb.Services.Qubes;

public sealed class LifecycleOptions
{
    /// <summary>How long a graceful shutdown may take before the qube is killed (Qubes' shutdown_timeout, 60 s).</summary>
    public TimeSpan ShutdownTimeout { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>How long a start may take before the job gives up.</summary>
    public TimeSpan StartTimeout { get; set; } = TimeSpan.FromSeconds(60);
}

/// <summary>
/// A shutdown's arguments: the running clients the user was told would lose their network and agreed to cut off
/// (<see cref="NetworkCutOff"/>). They keep running without network, as Qubes leaves them after its warning; their
/// interfaces stay on the netvm's link, which outlives its qube, so they have network again once it runs. A running
/// client not named here still refuses the shutdown: one that started after the user was asked was not agreed to.
/// </summary>
public sealed record ShutdownRequest(IReadOnlyList<string> ConfirmedCutOff);

/// <summary>Start, shutdown, kill, pause, resume and restart of one qube, each as a job.</summary>
public sealed class LifecycleJob(LifecycleAction action, IHypervisor hypervisor, EstateMonitor estate, Inventory inventory,
    RootLifecycle roots, FirstBootSeeds seeds, Microsoft.Extensions.Options.IOptions<LifecycleOptions> options) : IJobKind
{
    private readonly LifecycleOptions _options = options.Value;

    public JobKind Kind { get; } = LifecycleRules.KindOf(action);

    public string Describe(string target) => $"{action} {target}";

    public async Task ValidateAsync(string target, string? arguments, CancellationToken ct)
    {
        // A lifecycle action needs only to know the qube exists and is not dom0: one light query, not the whole qube.
        QubeRules.EnsureNotAdminVm(target, await inventory.ClassOfAsync(target, ct));
        if (!hypervisor.Connection.IsUp)
            throw new HypervisorUnavailableException($"libvirt is not reachable ({hypervisor.Connection.Error}); actions are disabled until it is back.");
        var state = hypervisor.GetDomain(target)?.State
            ?? throw new QubeRuleException($"'{target}' is not defined in libvirt yet; the console defines it from the inventory at its next reconciliation.");
        if (LifecycleRules.Refusal(target, action, state) is { } refusal) throw new QubeRuleException(refusal);
        // A restart takes a netvm away only briefly and its clients reconnect, as Qubes' updater restarts sys-net.
        if (action is LifecycleAction.Shutdown)
            await EnsureCutOffConfirmedAsync(target, arguments, ct);
    }

    /// <summary>
    /// Qubes does not stop a netvm that running qubes use unless the user agrees: they would lose network without being
    /// told. Returns who is cut off (all of them confirmed).
    /// </summary>
    private async Task<NetworkCutOff> EnsureCutOffConfirmedAsync(string target, string? arguments, CancellationToken ct)
    {
        var confirmed = arguments is null ? [] : JobArguments.Parse<ShutdownRequest>(arguments).ConfirmedCutOff ?? [];
        var cutOff = await NetworkCutOff.ReadAsync(inventory, estate, target, ct);
        if (LifecycleRules.CutOffRefusal(cutOff, confirmed) is { } refusal) throw new QubeRuleException(refusal);
        return cutOff;
    }

    public async Task RunAsync(JobContext job, CancellationToken ct)
    {
        var state = hypervisor.GetDomain(job.Target)?.State
            ?? throw new QubeRuleException($"'{job.Target}' is not defined in libvirt.");
        // The state may have changed while the job was queued.
        if (LifecycleRules.Refusal(job.Target, action, state) is { } refusal) throw new QubeRuleException(refusal);

        switch (action)
        {
            case LifecycleAction.Start:
                await StartAsync(job, ct);
                break;
            case LifecycleAction.Shutdown:
                await ShutdownAsync(job, 0, 100, ct, arguments: job.Arguments);
                break;
            case LifecycleAction.Kill:
                await job.ProgressAsync(50, "Killing");
                hypervisor.Kill(job.Target);
                await estate.WaitForStateAsync(job.Target, s => s == RunState.Halted, _options.ShutdownTimeout, ct);
                await job.LogAsync($"Killed {job.Target}.");
                await SettleAsync(job, "Committed when it was killed", 90);
                break;
            case LifecycleAction.Pause:
                await job.ProgressAsync(50, "Pausing");
                hypervisor.Pause(job.Target);
                FaultPoints.Hit("paused");
                await estate.WaitForStateAsync(job.Target, s => s == RunState.Paused, _options.StartTimeout, ct);
                await job.LogAsync($"Paused {job.Target}.");
                break;
            case LifecycleAction.Resume:
                await job.ProgressAsync(50, "Resuming");
                hypervisor.Resume(job.Target);
                FaultPoints.Hit("resumed");
                await estate.WaitForStateAsync(job.Target, s => s == RunState.Running, _options.StartTimeout, ct);
                await job.LogAsync($"Resumed {job.Target}.");
                break;
            case LifecycleAction.Restart:
                await ShutdownAsync(job, 0, 50, ct, restart: true);
                await StartAsync(job, ct, from: 50);
                break;
        }
    }

    /// <summary>Starts the job's target as a start job does (its netvm chain first), for a job that makes a qube and starts it.</summary>
    public Task StartQubeAsync(JobContext job, CancellationToken ct, int from = 0) => StartAsync(job, ct, from);

    private async Task StartAsync(JobContext job, CancellationToken ct, int from = 0)
    {
        // As Qubes does, a qube's netvm chain is started first so it has network when it comes up. One light query
        // for every qube's netvm name: a start should not load whole qubes to walk a chain of names.
        Dictionary<string, string?> netvmOf;
        await using (var db = await inventory.Contexts.CreateDbContextAsync(ct))
            netvmOf = await db.Qubes.Select(q => new { q.Name, Net = q.NetVm == null ? null : q.NetVm.Name }).ToDictionaryAsync(q => q.Name, q => q.Net, ct);
        if (!netvmOf.ContainsKey(job.Target)) throw QubeRuleException.NoQube(job.Target);
        var chain = new List<string>();
        for (var net = netvmOf[job.Target]; net is not null && netvmOf.ContainsKey(net); net = netvmOf[net])
        {
            if (chain.Contains(net)) break;
            chain.Insert(0, net);
        }
        foreach (var net in chain)
        {
            if (hypervisor.GetDomain(net)?.State is RunState.Running) continue;
            await job.ProgressAsync(from + 10, $"Starting netvm {net}");
            await job.LogAsync($"Starting {net}, the netvm {job.Target} depends on.");
            await StartOneAsync(job, net, ct);
            await estate.WaitForStateAsync(net, s => s == RunState.Running, _options.StartTimeout, ct);
        }
        ct.ThrowIfCancellationRequested();
        await job.ProgressAsync(from + 20, "Preparing its volumes");
        await StartOneAsync(job, job.Target, ct);
        await job.ProgressAsync(from + 30, "Starting");
        await job.ProgressAsync(from + 60, "Waiting for it to run");
        await estate.WaitForStateAsync(job.Target, s => s == RunState.Running, _options.StartTimeout, ct);
        await job.LogAsync($"{job.Target} is running.");
    }

    /// <summary>
    /// Makes the qube's runtime volumes (root snapshot or dirty overlay, fresh volatile), then starts it; a start that
    /// fails takes them away again.
    /// </summary>
    private async Task StartOneAsync(JobContext job, string name, CancellationToken ct)
    {
        await roots.PrepareStartAsync(name, text => job.LogAsync(text), ct: ct);
        // After the volumes, not beside them: a start refused for its volumes writes nothing at all.
        await WriteSeedAsync(job, name, ct);
        FaultPoints.Hit("volumes-prepared");
        try
        {
            hypervisor.Start(name);
            FaultPoints.Hit("started");
        }
        catch (HypervisorException) when (hypervisor.GetDomain(name)?.State is RunState.Running)
        {
            // Started by someone else in between: it runs, which is what was asked.
        }
        catch (Exception)
        {
            if (hypervisor.GetDomain(name)?.State is RunState.Halted)
                await roots.SettleStoppedAsync(name, "Committed after a failed start", DateTime.UtcNow, text => job.LogAsync(text), CancellationToken.None);
            throw;
        }
    }

    /// <summary>Written at each start: an AppVM's root is fresh each time, and a changed setting reaches the guest so.</summary>
    private async Task WriteSeedAsync(JobContext job, string name, CancellationToken ct)
    {
        if (await seeds.WriteAsync(await inventory.GetForDomainAsync(name, ct), ct))
            await job.LogAsync($"First-boot configuration (cloud-init) written for {name}.");
    }

    /// <summary>
    /// After the stop: a template's or standalone's writes committed as its next revision, an AppVM's snapshot and
    /// volatile volume dropped. Not cancellable: a half-settled qube would only leave work to recovery.
    /// </summary>
    private async Task SettleAsync(JobContext job, string reason, int percent)
    {
        FaultPoints.Hit("stopped");
        await job.ProgressAsync(percent, "Saving its root");
        await roots.SettleStoppedAsync(job.Target, reason, DateTime.UtcNow, text => job.LogAsync(text), CancellationToken.None);
    }

    private async Task ShutdownAsync(JobContext job, int from, int to, CancellationToken ct, bool restart = false, string? arguments = null)
    {
        // Checked again: a client may have started while this job was queued.
        if (!restart && await EnsureCutOffConfirmedAsync(job.Target, arguments, ct) is { Any: true } cutOff)
            await job.LogAsync($"Shutting down as confirmed; left running, without network until {job.Target} runs again: "
                + $"{string.Join(", ", cutOff.Clients.Concat(cutOff.Behind))}.", Data.Jobs.JobLogLevel.Warning);

        await job.ProgressAsync(from + (to - from) / 5, "Shutting down");
        hypervisor.Shutdown(job.Target);
        try
        {
            await estate.WaitForStateAsync(job.Target, s => s == RunState.Halted, _options.ShutdownTimeout, ct);
            await job.LogAsync($"{job.Target} shut down.");
        }
        catch (TimeoutException)
        {
            // Qubes kills a qube that ignores the shutdown request after its timeout.
            await job.LogAsync($"{job.Target} did not shut down within {_options.ShutdownTimeout.TotalSeconds:0} s; killing it.", Data.Jobs.JobLogLevel.Warning);
            await job.ProgressAsync(from + (to - from) * 4 / 5, "Killing after timeout");
            hypervisor.Kill(job.Target);
            await estate.WaitForStateAsync(job.Target, s => s == RunState.Halted, _options.ShutdownTimeout, ct);
        }
        await SettleAsync(job, restart ? "Committed at a restart" : "Committed at shutdown", from + (to - from) * 9 / 10);
        await job.ProgressAsync(to, "Halted");
    }

    /// <summary>
    /// libvirt's state is the truth, so it is read again; the qube's volumes (a commit cut off half-way, a snapshot
    /// left by a qube that no longer runs) were already settled by start-up recovery, before any job could run.
    /// </summary>
    public async Task RecoverAsync(JobContext job, CancellationToken ct)
    {
        var state = hypervisor.Connection.IsUp ? hypervisor.GetDomain(job.Target)?.State : null;
        await job.LogAsync(state is null
            ? "libvirt is not reachable now; its state will be read when it is back."
            : $"libvirt reports {job.Target} {state.ToString()!.ToLowerInvariant()}; its volumes were settled by start-up recovery.");
    }
}
