using System.Security.Cryptography;
using Microsoft.EntityFrameworkCore;
using QubesWeb.Data.Jobs;
using QubesWeb.Data.Qubes;
using QubesWeb.Hypervisor.Domains;
using QubesWeb.Services.Estate;
using QubesWeb.Services.Jobs;
using QubesWeb.Services.Qubes;

namespace QubesWeb.Services.Disposables;

/// <summary>A disposable template as the pages offer it.</summary>
/// <param name="Running">Its disposables that run now, by name.</param>
public sealed record DispTemplateView(string Name, string Label, string? Template, bool IsDefault, IReadOnlyList<string> Running);

/// <summary>Launching disposables, and which AppVMs are disposable templates (Qubes' template_for_dispvms and default_dispvm).</summary>
public sealed class DisposableCommands(JobEngine jobs, Inventory inventory, IHypervisor hypervisor, EstateMonitor estate, QubeCommands qubes)
{
    /// <summary>Qubes' disposables are named disp0 to disp9999.</summary>
    public const int NumberCount = 10_000;

    /// <summary>How long a disposable's name is not given to another one (its tasks and logs still name it).</summary>
    public static readonly TimeSpan NameRest = TimeSpan.FromDays(1);

    /// <summary>
    /// Launches a disposable from <paramref name="dispTemplate"/> (null: the default disposable template); the job
    /// makes and starts it. Refused with the reason when there is no such template or it cannot be used now.
    /// </summary>
    public async Task<Job> LaunchAsync(string? dispTemplate, CancellationToken ct = default)
    {
        var dvm = dispTemplate ?? await DefaultAsync(ct)
            ?? throw new QubeRuleException("There is no default disposable template: choose one on a disposable template's page (\"Make default\"), or launch from one.");
        return await TakePreloadedAsync(dvm, ct)
            ?? await jobs.EnqueueAsync(JobKind.LaunchDisposable, await NewNameAsync(ct), new LaunchDisposableRequest(dvm), ct);
    }

    /// <summary>
    /// Hands out a preloaded disposable of <paramref name="dvm"/>, if one waits and is still what a launch would make:
    /// it is claimed by removing its mark (of two launches at once, only one removes it), shown, and resumed by a job.
    /// </summary>
    private async Task<Job?> TakePreloadedAsync(string dvm, CancellationToken ct)
    {
        // Only the qubes that matter, not the whole inventory: this is the launch a user waits for.
        List<Qube> waiting;
        Qube? template;
        await using (var db = await inventory.Contexts.CreateDbContextAsync(ct))
        {
            waiting = await db.Qubes.AsNoTracking().Where(q => q.Class == QubeClass.DispVM && q.Template!.Name == dvm
                                                               && q.Features.Any(f => f.Key == DisposableFeatures.Preloaded))
                .Include(q => q.Label).Include(q => q.NetVm).Include(q => q.Volumes).AsSplitQuery()
                .OrderBy(q => q.CreatedUtc).ToListAsync(ct);
            if (waiting.Count == 0) return null;
            template = await db.Qubes.AsNoTracking().Where(q => q.Name == dvm)
                .Include(q => q.Label).Include(q => q.NetVm).Include(q => q.Features).Include(q => q.Volumes)
                .Include(q => q.Template).ThenInclude(t => t!.Volumes).ThenInclude(v => v.Revisions).AsSplitQuery().FirstOrDefaultAsync(ct);
        }
        if (template is not { IsDisposableTemplate: true }) return null;
        List<Qube> related = [.. waiting, template, .. template.Template is { } t ? new[] { t } : []];
        var current = Outdated.CurrentRevisions(related);
        var writes = Outdated.SourcePrivateWrites(related);
        foreach (var q in waiting)
        {
            var state = estate.StateOf(q);
            if (state != RunState.Paused || DisposablePreloader.IsStale(q, template, Outdated.Of(q, state, current, estate.StateOf, writes))) continue;
            if (await jobs.IsLockedAsync(q.Name, ct)) continue;
            // Both marks go in one statement: a launch that finds none left lost the race and tries the next.
            await using (var db = await inventory.Contexts.CreateDbContextAsync(ct))
            {
                var claimed = await db.Features.Where(f => (f.Key == DisposableFeatures.Preloaded || f.Key == "internal") && f.QubeId == q.Id)
                    .ExecuteDeleteAsync(ct);
                if (claimed == 0) continue;
            }
            var resume = await jobs.EnqueueAsync(JobKind.Resume, q.Name, ct);
            estate.InventoryChanged();
            return resume;
        }
        return null;
    }

    /// <summary>The default disposable template (dom0's default_dispvm), if it names one that still is.</summary>
    public async Task<string?> DefaultAsync(CancellationToken ct = default)
    {
        var all = await inventory.ListAsync(ct);
        var name = all.FirstOrDefault(q => q.Class == QubeClass.AdminVM)?.Feature(DisposableFeatures.DefaultDispvm);
        return all.FirstOrDefault(q => q.Name == name)?.IsDisposableTemplate == true ? name : null;
    }

    /// <summary>The default disposable template and the disposables based on <paramref name="name"/>, for its page.</summary>
    public async Task<(string? Default, IReadOnlyList<string> Disposables)> OfAsync(string name, CancellationToken ct = default)
    {
        var all = await inventory.ListAsync(ct);
        var def = all.FirstOrDefault(q => q.Class == QubeClass.AdminVM)?.Feature(DisposableFeatures.DefaultDispvm);
        return (def, all.Where(q => q.Class == QubeClass.DispVM && q.Template?.Name == name).Select(q => q.Name).Order(StringComparer.Ordinal).ToList());
    }

    /// <summary>Every disposable template, the default first, with its running disposables.</summary>
    public async Task<IReadOnlyList<DispTemplateView>> TemplatesAsync(CancellationToken ct = default)
    {
        var all = await inventory.ListAsync(ct);
        var def = all.FirstOrDefault(q => q.Class == QubeClass.AdminVM)?.Feature(DisposableFeatures.DefaultDispvm);
        return all.Where(q => q.IsDisposableTemplate)
            .Select(q => new DispTemplateView(q.Name, q.Label.Name, q.Template?.Name, q.Name == def, RunningOf(all, q.Name)))
            .OrderByDescending(v => v.IsDefault).ThenBy(v => v.Name, StringComparer.Ordinal).ToList();
    }

    private List<string> RunningOf(IEnumerable<Qube> all, string dvm) =>
        all.Where(q => q.Class == QubeClass.DispVM && q.Template?.Name == dvm && estate.StateOf(q) is not (RunState.Halted or RunState.Unknown))
            .Select(q => q.Name).Order(StringComparer.Ordinal).ToList();

    /// <summary>
    /// Makes an AppVM a disposable template or not. Turning it off is refused while disposables based on it exist
    /// (they would lose their source); the error names them.
    /// </summary>
    public async Task SetDispTemplateAsync(string name, bool on, CancellationToken ct = default)
    {
        var qube = await inventory.GetAsync(name, ct);
        if (qube.Class != QubeClass.AppVM)
            throw new QubeRuleException($"'{name}' is {QubeRules.Article(qube.Class)}; only an AppVM can be a disposable template.");
        await qubes.SavePropertiesAsync(name, new QubeChanges(Features: new Dictionary<string, string?>
        {
            [DisposableFeatures.TemplateForDispvms] = on ? "True" : null,
        }), ct);
        if (!on && await DefaultAsync(ct) is null)
            await inventory.SetDefaultDispvmAsync(null, ct);
        estate.InventoryChanged();
    }

    /// <inheritdoc cref="DisposableFeatures.MaxPreloaded"/>
    public const int MaxPreloaded = DisposableFeatures.MaxPreloaded;

    /// <summary>How many disposables <paramref name="name"/> keeps preloaded (its preload-dispvm-max; 0 removes it).</summary>
    public async Task SetPreloadAsync(string name, int count, CancellationToken ct = default)
    {
        if (count is < 0 or > MaxPreloaded)
            throw new QubeRuleException($"Keep 0 to {MaxPreloaded} disposables preloaded; {count} is out of range.");
        var qube = await inventory.GetAsync(name, ct);
        if (!qube.IsDisposableTemplate)
            throw new QubeRuleException($"'{name}' is not a disposable template; turn on \"Disposable template\" first.");
        await qubes.SavePropertiesAsync(name, new QubeChanges(Features: new Dictionary<string, string?>
        {
            [DisposableFeatures.PreloadMax] = count == 0 ? null : count.ToString(System.Globalization.CultureInfo.InvariantCulture),
        }), ct);
        estate.InventoryChanged();
    }

    /// <summary>Makes <paramref name="name"/> the default disposable template (the dashboard's and qubes list's "New disposable").</summary>
    public async Task SetDefaultAsync(string name, CancellationToken ct = default)
    {
        await inventory.SetDefaultDispvmAsync(name, ct);
        estate.InventoryChanged();
    }

    /// <summary>
    /// A free name as Qubes makes one: "disp" and a random number below 10000 that no qube or domain has, and that no
    /// disposable had in the last day (a task or log line that names it names one qube).
    /// </summary>
    public async Task<string> NewNameAsync(CancellationToken ct = default)
    {
        var taken = new HashSet<string>(StringComparer.Ordinal);
        await using (var db = await inventory.Contexts.CreateDbContextAsync(ct))
        {
            taken.UnionWith(await db.Qubes.Select(q => q.Name).ToListAsync(ct));
            var since = DateTime.UtcNow - NameRest;
            var launch = JobKind.LaunchDisposable.Name;
            taken.UnionWith(await db.Jobs.Where(j => j.Kind == launch && j.CreatedUtc > since).Select(j => j.Target).ToListAsync(ct));
        }
        if (hypervisor.Connection.IsUp) taken.UnionWith(hypervisor.ListDomains().Select(d => d.Name));
        // Random picks first; a scan from a random point if the space is nearly full.
        for (var i = 0; i < 64; i++)
        {
            var name = "disp" + RandomNumberGenerator.GetInt32(NumberCount);
            if (!taken.Contains(name)) return name;
        }
        var start = RandomNumberGenerator.GetInt32(NumberCount);
        for (var i = 0; i < NumberCount; i++)
        {
            var name = "disp" + (start + i) % NumberCount;
            if (!taken.Contains(name)) return name;
        }
        throw new QubeRuleException($"All {NumberCount} disposable names are in use or were used in the last day; remove some disposables first.");
    }
}
