using QubesWeb.Data.Qubes;
using Microsoft.EntityFrameworkCore;
using QubesWeb.Hypervisor.Domains;

namespace QubesWeb.Services.Qubes;

/// <summary>What the pages read about qubes from the inventory. Reads only; changes go through <see cref="QubeCommands"/>.</summary>
public sealed class QubeQueries(Inventory inventory, IHypervisor hypervisor)
{
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

    public Task<List<Qube>> ListAsync(CancellationToken ct = default) => inventory.ListAsync(ct);

    public Task<Qube?> FindAsync(string name, CancellationToken ct = default) => inventory.FindAsync(name, ct);

    /// <summary>The qube with its volumes and its template's (a domain's root disk is its template's); null when there is none.</summary>
    public async Task<Qube?> FindWithTemplateAsync(string name, CancellationToken ct = default)
    {
        var qube = await inventory.FindAsync(name, ct);
        // The inventory's query loads the template without its volumes.
        if (qube?.Template is not null) qube.Template = await inventory.FindAsync(qube.Template.Name, ct) ?? qube.Template;
        return qube;
    }

    public Task<Qube> GetAsync(string name, CancellationToken ct = default) => inventory.GetAsync(name, ct);

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
}
