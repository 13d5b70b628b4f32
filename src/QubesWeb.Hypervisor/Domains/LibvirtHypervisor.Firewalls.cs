// The qubes' firewalls: one libvirt nwfilter per qube, named by FirewallSpec, which the qube's interface refers to.
using System.Xml.Linq;
using QubesWeb.Hypervisor.Libvirt;
using QubesWeb.Hypervisor.Networks;

namespace QubesWeb.Hypervisor.Domains;

public sealed partial class LibvirtHypervisor
{
    public FirewallApply DefineFirewallIfChanged(FirewallSpec firewall) => Use(conn =>
    {
        try
        {
            Guid? uuid = null;
            using (var existing = conn.TryLookupNWFilterByName(firewall.Name))
                if (existing is not null)
                {
                    if (NetworkXml.Describes(DomainXml.ParseSafe(existing.GetXmlDesc()).Root!, firewall)) return FirewallApply.Unchanged;
                    // The same UUID makes it a redefinition: libvirt swaps the rules on every interface that uses it.
                    uuid = existing.Uuid;
                }
            using var defined = conn.DefineNWFilterXml(NetworkXml.Firewall(firewall, uuid));
            return FirewallApply.Applied;
        }
        catch (LibvirtException e) when (e.Code == ErrorNumber.NoSupport)
        {
            return FirewallApply.NotSupported;
        }
    });

    public IReadOnlyList<string> ListFirewalls() => Use(conn =>
    {
        try
        {
            var names = new List<string>();
            foreach (var f in conn.ListAllNWFilters())
                using (f)
                    if (FirewallSpec.IsFirewallName(f.Name)) names.Add(f.Name);
            return (IReadOnlyList<string>)names;
        }
        catch (LibvirtException e) when (e.Code == ErrorNumber.NoSupport)
        {
            return [];
        }
    });

    public bool RemoveFirewall(string name)
    {
        // Only the console's own filters: libvirt's stock ones (clean-traffic, ...) are never removed.
        if (!FirewallSpec.IsFirewallName(name)) throw new ArgumentException($"'{name}' is not one of the console's firewalls.", nameof(name));
        return Use(conn =>
        {
            try
            {
                using var f = conn.TryLookupNWFilterByName(name);
                if (f is null) return true;
                // libvirt refuses the undefine only while a running interface uses the filter; a halted domain whose
                // definition names it would then fail to start. Either kind of use keeps it.
                if (DomainsUsing(conn, d => FiltersOf(d).Contains(name, StringComparer.Ordinal))) return false;
                f.Undefine();
                return true;
            }
            catch (LibvirtException e) when (e.Code is ErrorNumber.NoSupport)
            {
                return true;
            }
            catch (LibvirtException e) when (e.Code is ErrorNumber.OperationInvalid or ErrorNumber.OperationFailed)
            {
                // An interface started on it since the check: removed at a later reconciliation.
                return false;
            }
        });
    }

    private static IEnumerable<string> FiltersOf(string domainXml) =>
        DomainXml.ParseSafe(domainXml).Root?.Element("devices")?.Elements("interface")
            .Select(i => i.Element("filterref")?.Attribute("filter")?.Value).OfType<string>() ?? [];
}
