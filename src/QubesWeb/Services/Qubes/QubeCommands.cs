using QubesWeb.Data.Jobs;
using QubesWeb.Data.Qubes;
using QubesWeb.Hypervisor.Domains;
using QubesWeb.Hypervisor.Networks;
using QubesWeb.Services.Estate;
using QubesWeb.Services.Jobs;

namespace QubesWeb.Services.Qubes;

/// <summary>What a save of a qube's properties did.</summary>
/// <param name="AppliesAtNextStart">memory or VCPUs changed while it runs: libvirt keeps them for its next start.</param>
/// <param name="DomainProblem">libvirt did not take the new definition (the inventory change stands); why.</param>
/// <param name="Network">What became of a running qube's interfaces when its netvm changed (moved live, or at its next start).</param>
public sealed record SaveOutcome(string Qube, bool AppliesAtNextStart, string? DomainProblem, InterfaceMove Network = InterfaceMove.Unchanged);

/// <summary>What a save of a qube's firewall did.</summary>
/// <param name="Applied">What libvirt did with the rules; null when the qube is on no netvm (kept for when it is).</param>
/// <param name="Problem">libvirt did not take the rules (the inventory keeps them, and the next reconciliation applies them); why.</param>
public sealed record FirewallOutcome(string Qube, FirewallApply? Applied, string? Problem);

/// <summary>One qube's outcome in a command on many: queued as a job, or refused with the reason.</summary>
public sealed record QubeOutcome(string Qube, Job? Job, string? Refusal)
{
    public bool Done => Refusal is null;
}

/// <summary>
/// Everything a page can do to a qube. Each command checks Qubes' rules through the inventory and the job kinds
/// (a refusal is a <see cref="RefusalException"/> whose message the page shows as it is), then queues a job or
/// applies the change and announces it. Pages call these, never the engine, the inventory's writers or libvirt.
/// </summary>
public sealed class QubeCommands(JobEngine jobs, Inventory inventory, IHypervisor hypervisor, DomainDefinitions domains, EstateMonitor estate,
    CloneQubeJob clones, InstallMedia media)
{
    /// <summary>Attaches an ISO file as the qube's CD-ROM and boots it from there until its first shutdown.</summary>
    public Task AttachMediaAsync(string qube, string? isoPath, CancellationToken ct = default) => media.AttachAsync(qube, isoPath, ct);

    public Task DetachMediaAsync(string qube, CancellationToken ct = default) => media.DetachAsync(qube, ct);

    /// <summary>
    /// What a clone or standalone would copy and whether it fits, read from the source's chain before anything is
    /// queued; a chain that cannot be read is a refusal that says why.
    /// </summary>
    public async Task<ClonePlan> PlanCloneAsync(CloneRequest request, CancellationToken ct = default)
    {
        try
        {
            return await clones.PlanAsync(request, ct);
        }
        catch (InvalidOperationException)
        {
            throw new Storage.StorageException($"'{QubeRules.Shown(request.Source)}' cannot be copied: its current root revision is missing from the inventory.");
        }
        catch (Exception e) when (e is Hypervisor.Storage.ProcessFailedException or IOException or UnauthorizedAccessException)
        {
            throw new Storage.StorageException(e.Message, e);
        }
    }

    /// <summary>Queues <paramref name="action"/> on <paramref name="qube"/>.</summary>
    public Task<Job> RunAsync(string qube, LifecycleAction action, CancellationToken ct = default) =>
        jobs.EnqueueAsync(LifecycleRules.KindOf(action), qube, ct);

    /// <summary>
    /// Who would lose network if <paramref name="qube"/> stopped, so a page can ask before a shutdown (the job refuses
    /// one that cuts off running qubes the user did not agree to).
    /// </summary>
    public Task<NetworkCutOff> CutOffIfStoppedAsync(string qube, CancellationToken ct = default) =>
        NetworkCutOff.ReadAsync(inventory, estate, qube, ct);

    /// <summary>
    /// Queues a shutdown of <paramref name="qube"/> that the user confirmed although it cuts <paramref name="confirmedCutOff"/>
    /// (its running clients, from <see cref="CutOffIfStoppedAsync"/>) off the network; they keep running without it.
    /// </summary>
    public Task<Job> ShutdownAsync(string qube, IReadOnlyList<string> confirmedCutOff, CancellationToken ct = default) =>
        jobs.EnqueueAsync(JobKind.Shutdown, qube, new ShutdownRequest(confirmedCutOff), ct);

    /// <summary>
    /// Queues <paramref name="action"/> on each qube; each is queued or refused on its own, in name order. A shutdown of
    /// a qube in <paramref name="confirmedCutOffs"/> cuts off the clients named there (<see cref="ShutdownAsync"/>).
    /// </summary>
    public async Task<IReadOnlyList<QubeOutcome>> RunManyAsync(IEnumerable<string> qubes, LifecycleAction action,
        IReadOnlyDictionary<string, IReadOnlyList<string>>? confirmedCutOffs = null, CancellationToken ct = default)
    {
        var outcomes = new List<QubeOutcome>();
        foreach (var name in qubes.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal))
        {
            try
            {
                var job = action == LifecycleAction.Shutdown && confirmedCutOffs?.GetValueOrDefault(name) is { } cutOff
                    ? await ShutdownAsync(name, cutOff, ct)
                    : await RunAsync(name, action, ct);
                outcomes.Add(new QubeOutcome(name, job, null));
            }
            catch (RefusalException e)
            {
                outcomes.Add(new QubeOutcome(name, null, e.Message));
            }
        }
        return outcomes;
    }

    public Task<Job> CreateAsync(string name, CreateQubeRequest request, CancellationToken ct = default) =>
        jobs.EnqueueAsync(JobKind.Create, name, request, ct);

    /// <summary>A clone of a qube, or a standalone made from a template (the wizard): a copy of its root.</summary>
    public Task<Job> CloneAsync(string name, CloneRequest request, CancellationToken ct = default) =>
        jobs.EnqueueAsync(JobKind.Clone, name, request, ct);

    /// <summary>Says now, before the user confirms, why <paramref name="qube"/> cannot be removed (throws a refusal).</summary>
    public Task CheckRemovableAsync(string qube, CancellationToken ct = default) =>
        jobs.ValidateAsync(JobKind.Remove, qube, null, ct);

    public Task<Job> RemoveAsync(string qube, CancellationToken ct = default) =>
        jobs.EnqueueAsync(JobKind.Remove, qube, ct);

    /// <summary>
    /// Saves a change of a qube's properties: the inventory checks every rule and applies all or nothing, then the
    /// qube's domain is redefined if its definition changed. A running qube keeps its memory and VCPUs until its next
    /// start, as libvirt does.
    /// </summary>
    public async Task<SaveOutcome> SavePropertiesAsync(string qube, QubeChanges changes, CancellationToken ct = default)
    {
        // A name no qube could have is refused before libvirt's C API reads "vault\0x" as "vault".
        QubeRules.ValidateName(qube);
        // libvirt is asked, not the last event: whether the template may change depends on the state right now.
        var running = hypervisor.Connection.IsUp && hypervisor.GetDomain(qube)?.State is { } s && s != RunState.Halted;
        await EnsureDisposablesKeepTheirSourceAsync(qube, changes, ct);
        await inventory.UpdateAsync(qube, changes, running, ct);
        string? problem = null;
        var network = InterfaceMove.Unchanged;
        try
        {
            // A netvm change reaches a running guest at once (its interface moves to the new link), as in Qubes.
            if (changes.NetVm is not null || changes.ClearNetVm) network = await domains.ReapplyLiveAsync(qube, ct);
            else await domains.ReapplyAsync(qube, ct);
        }
        catch (RefusalException e)
        {
            problem = e.Message;
        }
        estate.InventoryChanged();
        return new SaveOutcome(qube, running && (changes.MemoryMiB is not null || changes.VCpus is not null), problem, network);
    }

    /// <summary>
    /// Saves a qube's firewall (its policy and every rule, or nothing when one is refused), then has libvirt enforce
    /// it: a running qube's interface gets the new rules at once, without a restart, as Qubes' firewall does.
    /// </summary>
    public async Task<FirewallOutcome> SetFirewallAsync(QubeFirewall firewall, CancellationToken ct = default)
    {
        QubeRules.ValidateName(firewall.Qube);
        await inventory.SetFirewallAsync(firewall, ct);
        FirewallApply? applied = null;
        string? problem = null;
        try
        {
            applied = await domains.ApplyFirewallAsync(firewall.Qube, ct);
        }
        catch (RefusalException e)
        {
            problem = e.Message;
        }
        estate.InventoryChanged();
        return new FirewallOutcome(firewall.Qube, applied, problem);
    }

    /// <summary>
    /// Qubes' rules for a disposable template: it stops being one only when no disposable is based on it, and its own
    /// template changes only while none of its disposables runs (they were made from the old one). The error names them.
    /// </summary>
    private async Task EnsureDisposablesKeepTheirSourceAsync(string name, QubeChanges changes, CancellationToken ct)
    {
        var turnsOff = changes.Features is { } f && f.TryGetValue(DisposableFeatures.TemplateForDispvms, out var v) && !QubeFeatureRules.IsOn(v);
        if (!turnsOff && changes.Template is null) return;
        var disposables = (await inventory.ListAsync(ct)).Where(q => q.Class == QubeClass.DispVM && q.Template?.Name == name).ToList();
        if (turnsOff && disposables.Count > 0)
            throw new QubeRuleException($"'{name}' is the disposable template of {string.Join(", ", disposables.Select(d => d.Name))}; remove them before it stops being one.");
        var running = disposables.Where(d => estate.StateOf(d) is not (RunState.Halted or RunState.Unknown)).Select(d => d.Name).ToList();
        if (changes.Template is not null && running.Count > 0)
            throw new QubeRuleException($"Disposables based on '{name}' are running: {string.Join(", ", running)}. Shut them down before switching its template.");
    }

    /// <summary>
    /// Qube Manager's Template Switcher: a new template for one or many AppVMs, each only while it is halted. Each is
    /// switched or refused on its own, with the reason.
    /// </summary>
    public async Task<IReadOnlyList<QubeOutcome>> SwitchTemplateAsync(IEnumerable<string> qubes, string template, CancellationToken ct = default)
    {
        var outcomes = new List<QubeOutcome>();
        foreach (var name in qubes.Distinct(StringComparer.Ordinal))
        {
            try
            {
                var saved = await SavePropertiesAsync(name, new QubeChanges(Template: template), ct);
                outcomes.Add(new QubeOutcome(name, null, saved.DomainProblem));
            }
            catch (RefusalException e)
            {
                outcomes.Add(new QubeOutcome(name, null, e.Message));
            }
        }
        return outcomes;
    }
}
