using QubesWeb.Data.Qubes;
using QubesWeb.Hypervisor.Domains;

namespace QubesWeb.Services.Qubes;

/// <summary>What the jobs that make a qube (create, clone, import) check of it before they are queued.</summary>
public static class NewQubeRules
{
    /// <summary>Refuses a name Qubes' rules forbid, one a qube has, or one an unmanaged libvirt domain has.</summary>
    public static async Task EnsureNameFreeAsync(string name, Inventory inventory, IHypervisor hypervisor, CancellationToken ct)
    {
        QubeRules.ValidateName(name);
        if (await inventory.FindAsync(name, ct) is not null)
            throw new QubeRuleException($"A qube named '{name}' already exists; choose another name.");
        if (hypervisor.Connection.IsUp && hypervisor.GetDomain(name) is not null)
            throw new QubeRuleException($"libvirt already has a domain named '{name}' (unmanaged); choose another name.");
    }

    /// <summary>Refuses a label the inventory does not have.</summary>
    public static async Task EnsureLabelAsync(string label, Inventory inventory, CancellationToken ct)
    {
        if (!(await inventory.LabelsAsync(ct)).Any(l => l.Name == label))
            throw new QubeRuleException($"There is no label '{QubeRules.Shown(label)}'.");
    }
}
