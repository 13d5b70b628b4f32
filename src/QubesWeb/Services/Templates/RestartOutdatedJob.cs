using QubesWeb.Data.Jobs;
using QubesWeb.Data.Qubes;
using QubesWeb.Hypervisor.Domains;
using QubesWeb.Services.Estate;
using QubesWeb.Services.Jobs;

namespace QubesWeb.Services.Templates;

/// <param name="ShutDownTemplatesFirst">Shut down the running template(s) first, so their changes are committed and
/// the restarts pick them up (the console offers it when a template still runs).</param>
public sealed record RestartOutdatedRequest(bool ShutDownTemplatesFirst = false);

/// <summary>
/// Restarts the outdated qubes of one template (target: the template) or of all (target: dom0), as Qubes' updater
/// does after updates: service qubes (provides_network) first, netvms before the qubes behind them, then the rest;
/// qubes with the feature restart-after-update set to false are left alone. Each restart is a job of its own.
/// </summary>
public sealed class RestartOutdatedJob(Inventory inventory, EstateMonitor estate) : IJobKind
{
    public JobKind Kind => JobKind.RestartOutdated;
    public bool Orchestrates => true;

    // Not the template's own lock: shutting the template down first is a job on the template.
    public string LockName(string target) => $"{Kind.Name}:{target}";

    public string Describe(string target) =>
        target == QubeRules.AdminVmName ? "Restart all outdated qubes" : $"Restart the outdated qubes of {target}";

    public async Task ValidateAsync(string target, string? arguments, CancellationToken ct)
    {
        JobArguments.Parse<RestartOutdatedRequest>(arguments);
        if (target == QubeRules.AdminVmName) return;
        var template = await inventory.GetAsync(target, ct);
        if (template.Class != QubeClass.TemplateVM)
            throw new QubeRuleException($"'{target}' is {QubeRules.Article(template.Class)}, not a template; restart it on its own.");
    }

    /// <summary>The running templates in scope, which the user is offered to shut down first.</summary>
    public async Task<IReadOnlyList<string>> RunningTemplatesAsync(string target, CancellationToken ct)
    {
        var qubes = await inventory.ListAsync(ct);
        return qubes.Where(q => q.Class == QubeClass.TemplateVM && (target == QubeRules.AdminVmName || q.Name == target)
                && estate.StateOf(q) is not RunState.Halted and not RunState.Unknown
                && qubes.Any(d => d.Template?.Name == q.Name && estate.StateOf(d) is RunState.Running or RunState.Paused))
            .Select(q => q.Name).ToList();
    }

    /// <summary>What would be restarted now, in order, and what is left alone and why.</summary>
    public async Task<(IReadOnlyList<Qube> Order, IReadOnlyList<string> LeftAlone)> PlanAsync(string target, CancellationToken ct)
    {
        var qubes = await inventory.ListAsync(ct);
        var current = Outdated.CurrentRevisions(qubes);
        var outdated = qubes.Where(q => (target == QubeRules.AdminVmName || q.Template?.Name == target)
                                        && Outdated.Of(q, estate.StateOf(q), current, estate.StateOf) == RootStaleness.Outdated).ToList();
        var leftAlone = outdated.Where(q => !Outdated.RestartsAfterUpdate(q)).Select(q => q.Name).ToList();
        outdated.RemoveAll(q => leftAlone.Contains(q.Name));
        // Service qubes first, each after the netvm it hangs on; then the rest by name.
        var byName = qubes.ToDictionary(q => q.Name);
        int Depth(Qube q)
        {
            var d = 0;
            for (var n = q.NetVm?.Name; n is not null && d < 64 && byName.TryGetValue(n, out var net); n = net.NetVm?.Name) d++;
            return d;
        }
        var order = outdated.OrderByDescending(q => q.ProvidesNetwork).ThenBy(q => q.ProvidesNetwork ? Depth(q) : 0)
            .ThenBy(q => q.Name, StringComparer.Ordinal).ToList();
        return (order, leftAlone);
    }

    public async Task RunAsync(JobContext job, CancellationToken ct)
    {
        var request = job.ArgumentsAs<RestartOutdatedRequest>();
        var jobs = job.Jobs;
        if (request.ShutDownTemplatesFirst)
        {
            foreach (var template in await RunningTemplatesAsync(job.Target, ct))
            {
                await job.ProgressAsync(5, $"Shutting down {template}");
                await job.LogAsync($"Shutting down {template} first, so its changes are committed before its qubes restart.");
                var shutdown = await jobs.EnqueueAsync(JobKind.Shutdown, template, ct);
                var stopped = await jobs.WaitAsync(shutdown.Id, ct);
                if (stopped.State != JobState.Succeeded)
                    throw new QubeRuleException($"Shutting down {template} did not succeed (job #{stopped.Id}: {stopped.Error}); no qube was restarted.");
            }
        }

        var (order, leftAlone) = await PlanAsync(job.Target, ct);
        if (leftAlone.Count > 0)
            await job.LogAsync($"Left alone (restart-after-update is false): {string.Join(", ", leftAlone)}.");
        if (order.Count == 0)
        {
            await job.LogAsync("No qube is outdated.");
            return;
        }
        await job.LogAsync($"Restarting {order.Count} outdated qube(s): {string.Join(", ", order.Select(q => q.Name))}.");
        FaultPoints.Hit("planned");
        var failed = new List<string>();
        var done = 0;
        // Service qubes one by one (the next may hang on it); the others together, the engine's workers pacing them.
        var others = new List<(string Name, long Id)>();
        foreach (var q in order)
        {
            ct.ThrowIfCancellationRequested();
            Job child;
            try
            {
                child = await jobs.EnqueueAsync(JobKind.Restart, q.Name, ct);
            }
            catch (Exception e) when (e is JobConflictException or QubeRuleException)
            {
                await job.LogAsync($"{q.Name}: not restarted: {e.Message}", JobLogLevel.Warning);
                failed.Add(q.Name);
                continue;
            }
            await job.LogAsync($"{q.Name}: restart is job #{child.Id}.");
            if (!q.ProvidesNetwork) { others.Add((q.Name, child.Id)); continue; }
            await job.ProgressAsync(10 + 90 * done / order.Count, $"Restarting {q.Name}");
            if (!await FinishedWellAsync(job, q.Name, child.Id, ct)) failed.Add(q.Name);
            done++;
        }
        foreach (var (name, id) in others)
        {
            await job.ProgressAsync(10 + 90 * done / order.Count, $"Restarting {name}");
            if (!await FinishedWellAsync(job, name, id, ct)) failed.Add(name);
            done++;
        }
        if (failed.Count > 0)
            throw new QubeRuleException($"{failed.Count} of {order.Count} restart(s) did not succeed: {string.Join(", ", failed)}; see their jobs.");
        await job.LogAsync($"Restarted {order.Count} qube(s); none is outdated now.");
    }

    private static async Task<bool> FinishedWellAsync(JobContext job, string name, long id, CancellationToken ct)
    {
        var result = await job.Jobs.WaitAsync(id, ct);
        if (result.State == JobState.Succeeded) return true;
        await job.LogAsync($"{name}: restart job #{id} ended {result.State.ToString().ToLowerInvariant()}: {result.Error}", JobLogLevel.Warning);
        return false;
    }

    public Task RecoverAsync(JobContext job, CancellationToken ct) =>
        job.LogAsync("Each restart is a job of its own and recovers on its own; qubes still outdated can be restarted again.");
}
