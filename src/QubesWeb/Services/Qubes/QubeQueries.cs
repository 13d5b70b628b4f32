using QubesWeb.Data.Qubes;
using Microsoft.EntityFrameworkCore;
using QubesWeb.Data;
using QubesWeb.Hypervisor.Domains;
using QubesWeb.Services.Estate;

namespace QubesWeb.Services.Qubes;

/// <summary>
/// What the pages read about qubes from the inventory. Reads only; changes go through <see cref="QubeCommands"/>.
/// The whole list and its rows are read once and shared by every open page until the inventory or a run state
/// changes: with many tabs open, one change then costs one read, not one per tab, and one copy in memory.
/// </summary>
public sealed class QubeQueries(Inventory inventory, IHypervisor hypervisor, EstateMonitor estate, InventoryWrites writes,
    Microsoft.Extensions.Options.IOptions<FirstBootOptions> firstBoot, Microsoft.Extensions.Options.IOptions<EstateOptions> estateOptions)
{
    private sealed record Snapshot<T>(long Version, long States, Task<T> Read);

    private Snapshot<IReadOnlyList<Qube>>? _list;
    private Snapshot<IReadOnlyList<QubeRow>>? _rows;

    /// <summary>
    /// Every qube with its label, template, netvm, volumes and features, by name. Shared: callers must not change
    /// the qubes (they are the inventory's snapshot, not its rows).
    /// </summary>
    public Task<IReadOnlyList<Qube>> ListAsync(CancellationToken ct = default)
    {
        var version = writes.Version;
        if (_list is { } s && s.Version == version && !s.Read.IsFaulted && !s.Read.IsCanceled) return s.Read.WaitAsync(ct);
        // Not cancelled by the caller who happened to start it: others may be waiting for the same read.
        var read = ReadListAsync();
        _list = new(version, 0, read);
        return read.WaitAsync(ct);
    }

    private async Task<IReadOnlyList<Qube>> ReadListAsync() => await inventory.ListAsync(CancellationToken.None);

    /// <summary>The qubes as the lists show them (inventory joined with run states), shared as <see cref="ListAsync"/> is.</summary>
    public Task<IReadOnlyList<QubeRow>> RowsAsync(CancellationToken ct = default)
    {
        // Read the versions before the data: a change that lands in between makes the next call build again.
        var version = writes.Version;
        var states = estate.StatesVersion;
        if (_rows is { } s && s.Version == version && s.States == states && !s.Read.IsFaulted && !s.Read.IsCanceled) return s.Read.WaitAsync(ct);
        var rows = BuildRowsAsync();
        _rows = new(version, states, rows);
        return rows.WaitAsync(ct);
    }

    private async Task<IReadOnlyList<QubeRow>> BuildRowsAsync() => QubeRow.From(await ListAsync(), estate);

    /// <summary>
    /// Whether libvirt has a domain of that name (a qube's, or one this console does not manage); false when libvirt
    /// cannot be asked now, since the job that would use the name checks again.
    /// </summary>
    public bool DomainExists(string name)
    {
        try
        {
            return hypervisor.Connection.IsUp && hypervisor.GetDomain(name) is not null;
        }
        catch (RefusalException)
        {
            return false;
        }
    }

    public Task<Qube?> FindAsync(string name, CancellationToken ct = default) => inventory.FindAsync(name, ct);

    /// <summary>The qube with its volumes and its template's (a domain's root disk is its template's); null when there is none.</summary>
    public async Task<Qube?> FindWithTemplateAsync(string name, CancellationToken ct = default)
    {
        var qube = await inventory.FindAsync(name, ct);
        // The inventory's query loads the template without its volumes.
        if (qube?.Template is not null) qube.Template = await inventory.FindAsync(qube.Template.Name, ct) ?? qube.Template;
        // A disposable's root is its disposable template's template's.
        if (qube is { Class: QubeClass.DispVM, Template.Template: { } root })
            qube.Template.Template = await inventory.FindAsync(root.Name, ct) ?? root;
        return qube;
    }

    public Task<Qube> GetAsync(string name, CancellationToken ct = default) => inventory.GetAsync(name, ct);

    /// <summary>The qube's firewall: its policy and rules in order.</summary>
    public Task<QubeFirewall> FirewallAsync(string name, CancellationToken ct = default) => inventory.FirewallOfAsync(name, ct);

    public Task<List<Label>> LabelsAsync(CancellationToken ct = default) => inventory.LabelsAsync(ct);

    /// <summary>The names of the templates, in order.</summary>
    public async Task<List<string>> TemplateNamesAsync(CancellationToken ct = default)
    {
        await using var db = await inventory.Contexts.CreateDbContextAsync(ct);
        return await db.Qubes.Where(t => t.Class == QubeClass.TemplateVM).OrderBy(t => t.Name).Select(t => t.Name).ToListAsync(ct);
    }

    /// <summary>The names of the qubes that provide network, other than <paramref name="except"/>, in order.</summary>
    public async Task<List<string>> NetVmNamesAsync(string? except = null, CancellationToken ct = default)
    {
        await using var db = await inventory.Contexts.CreateDbContextAsync(ct);
        return await db.Qubes.Where(n => n.ProvidesNetwork && n.Name != except).OrderBy(n => n.Name).Select(n => n.Name).ToListAsync(ct);
    }

    /// <summary>
    /// What <paramref name="name"/>'s first-boot seed says (Proxmox's Cloud-Init tab), as its next start writes it; null
    /// when the qube gets none (its OS family runs no cloud-init) or does not exist.
    /// </summary>
    public async Task<FirstBootView?> FirstBootAsync(string name, CancellationToken ct = default)
    {
        Qube qube;
        try
        {
            qube = await inventory.GetForDomainAsync(name, ct);
        }
        catch (QubeRuleException)
        {
            return null;
        }
        if (FirstBootSeed.PathOf(qube) is not { } path) return null;
        var options = firstBoot.Value;
        var written = File.Exists(path) ? File.GetLastWriteTimeUtc(path) : (DateTime?)null;
        return new FirstBootView(path, FirstBootSeed.Family(qube)!, FirstBootSeed.Build(qube, options), FirstBootSeed.NetworkSummary(qube),
            options.SshAuthorizedKey is not null,
            options.PasswordHash is not null, written, estateOptions.Value.IsDemo);
    }
}
