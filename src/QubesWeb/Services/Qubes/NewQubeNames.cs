using QubesWeb.Data.Qubes;
using QubesWeb.Hypervisor.Domains;

namespace QubesWeb.Services.Qubes;

/// <summary>The name a job that makes a qube (create, clone, import) may take.</summary>
public static class NewQubeNames
{
    /// <summary>Refuses a name Qubes' rules forbid, one a qube has, or one an unmanaged libvirt domain has.</summary>
    public static async Task EnsureFreeAsync(string name, Inventory inventory, IHypervisor hypervisor, CancellationToken ct)
    {
        QubeRules.ValidateName(name);
        if (await inventory.FindAsync(name, ct) is not null)
            throw new QubeRuleException($"A qube named '{name}' already exists; choose another name.");
        if (hypervisor.Connection.IsUp && hypervisor.GetDomain(name) is not null)
            throw new QubeRuleException($"libvirt already has a domain named '{name}' (unmanaged); choose another name.");
    }
}
