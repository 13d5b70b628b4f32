using QubesWeb.Data.Qubes;
using QubesWeb.Hypervisor.Domains;

namespace QubesWeb.Services.Estate;

/// <summary>
/// The one place a qube's libvirt domain is (re)defined: always from the inventory, the source of truth, and only when
/// libvirt's definition differs from it, since a define for nothing still raises a lifecycle event in every tab.
/// </summary>
public sealed class DomainDefinitions(Inventory inventory, IHypervisor hypervisor)
{
    /// <summary>Defines <paramref name="qube"/>'s domain as the inventory says; whether libvirt's definition changed.</summary>
    public bool Apply(Qube qube) => hypervisor.DefineIfChanged(DomainSpecs.From(qube));

    /// <summary>Reads the qube from the inventory and defines its domain; whether libvirt's definition changed.</summary>
    public async Task<bool> ApplyAsync(string name, CancellationToken ct = default) =>
        Apply(await inventory.GetForDomainAsync(name, ct));

    /// <summary>
    /// As <see cref="ApplyAsync"/>, for a qube whose domain libvirt already has: one that has none yet gets it from
    /// the next reconciliation, so a change of properties never defines a domain on its own.
    /// </summary>
    public async Task<bool> ReapplyAsync(string name, CancellationToken ct = default) =>
        hypervisor.GetDomain(name) is not null && await ApplyAsync(name, ct);
}
