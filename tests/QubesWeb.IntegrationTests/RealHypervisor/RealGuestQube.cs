// The lane's small guest made a qube the console knows, for tests that reach it through the console (its socket, its page).
using System.Xml.Linq;
using QubesWeb.Data.Qubes;
using QubesWeb.Hypervisor.Libvirt;
using QubesWeb.Services.Estate;

namespace QubesWeb.IntegrationTests.RealHypervisor;

/// <summary>The lane's small guest as a qube the console knows: its domain first, then its inventory row with the same UUID.</summary>
public static class RealGuestQube
{
    /// <summary>The guest's domain, defined (not started) before the inventory has the qube, so no reconciliation defines another.</summary>
    public static Domain Define(Connect connect, TestGuest guest, string name) => connect.DefineDomainXml(guest.DomainXml(name));

    /// <summary>The qube's inventory row, with the domain's UUID, class, label and size: reconciliation leaves the domain be.</summary>
    public static async Task AddToInventoryAsync(ConsoleHost host, string name, Domain domain)
    {
        var xml = XDocument.Parse(domain.GetXmlDesc()).Root!;
        var uuid = Guid.Parse(xml.Element("uuid")!.Value);
        await host.Get<Inventory>().CreateAsync(new NewQube(name, QubeClass.StandaloneVM, "orange", MemoryMiB: 256, VCpus: 1, Uuid: uuid));
        host.Get<EstateMonitor>().InventoryChanged();
    }
}
