package nfqueue

import (
	"encoding/binary"
	"errors"
)

// The nfnetlink_queue wire format (linux/netfilter/nfnetlink_queue.h), read
// and written here without a netlink library: a packet message is parsed in
// place, with no allocation, and verdicts are written into a buffer the
// queue owns. Netlink headers are in host byte order, the nfqueue
// structures inside attributes in network byte order.
const (
	nlmsgHdrLen = 16 // struct nlmsghdr
	nfgenLen    = 4  // struct nfgenmsg
	nlaHdrLen   = 4  // struct nlattr

	nlmsgError = 2 // NLMSG_ERROR
	nlmsgDone  = 3 // NLMSG_DONE

	nlmFRequest = 0x1 // NLM_F_REQUEST
	nlmFAck     = 0x4 // NLM_F_ACK

	nlaTypeMask = 0x3fff // ~(NLA_F_NESTED | NLA_F_NET_BYTEORDER)

	subsysQueue = 3 // NFNL_SUBSYS_QUEUE

	msgPacket       = subsysQueue<<8 | 0 // NFQNL_MSG_PACKET
	msgVerdict      = subsysQueue<<8 | 1 // NFQNL_MSG_VERDICT
	msgConfig       = subsysQueue<<8 | 2 // NFQNL_MSG_CONFIG
	msgVerdictBatch = subsysQueue<<8 | 3 // NFQNL_MSG_VERDICT_BATCH

	attrPacketHdr  = 1  // NFQA_PACKET_HDR: struct nfqnl_msg_packet_hdr
	attrVerdictHdr = 2  // NFQA_VERDICT_HDR: struct nfqnl_msg_verdict_hdr
	attrPayload    = 10 // NFQA_PAYLOAD
	attrCapLen     = 16 // NFQA_CAP_LEN: the packet's length when cut by the copy range

	attrCfgCmd    = 1 // NFQA_CFG_CMD: struct nfqnl_msg_config_cmd
	attrCfgParams = 2 // NFQA_CFG_PARAMS: struct nfqnl_msg_config_params
	attrCfgMaxLen = 3 // NFQA_CFG_QUEUE_MAXLEN
	attrCfgMask   = 4 // NFQA_CFG_MASK
	attrCfgFlags  = 5 // NFQA_CFG_FLAGS

	cfgCmdBind   = 1 // NFQNL_CFG_CMD_BIND
	cfgCmdUnbind = 2 // NFQNL_CFG_CMD_UNBIND
	copyPacket   = 2 // NFQNL_COPY_PACKET
	cfgFFailOpen = 1 // NFQA_CFG_F_FAIL_OPEN

	verdictDrop   = 0 // NF_DROP
	verdictAccept = 1 // NF_ACCEPT

	// verdictMsgLen is one verdict message: header, nfgenmsg and the
	// NFQA_VERDICT_HDR attribute.
	verdictMsgLen = nlmsgHdrLen + nfgenLen + nlaHdrLen + 8
)

var (
	// errShort is a message or attribute shorter than its header or
	// longer than what holds it.
	errShort = errors.New("nfqueue: truncated netlink message")
	// errNoPacket is a packet message without its id.
	errNoPacket = errors.New("nfqueue: packet message without an id")
	// errNoPayload is a packet message with its id and without the packet
	// (one queued before the copy mode was set).
	errNoPayload = errors.New("nfqueue: packet message without a payload")
	// errCut is a packet cut short by the copy range.
	errCut = errors.New("nfqueue: packet cut by the copy range")
)

var ne = binary.NativeEndian

func align4(n int) int { return (n + 3) &^ 3 }

// nextMsg splits the first netlink message off b: its type, its body (after
// the netlink header) and what follows it. ok is false when b holds no
// complete message.
func nextMsg(b []byte) (typ uint16, body, rest []byte, ok bool) {
	if len(b) < nlmsgHdrLen {
		return 0, nil, nil, false
	}
	n := int(ne.Uint32(b))
	if n < nlmsgHdrLen || n > len(b) {
		return 0, nil, nil, false
	}
	typ = ne.Uint16(b[4:])
	body = b[nlmsgHdrLen:n]
	if a := align4(n); a < len(b) {
		rest = b[a:]
	}
	return typ, body, rest, true
}

// parsePacket reads the body of an NFQNL_MSG_PACKET message (after the
// netlink header): the packet id and the packet, which aliases body. With
// errCut and errNoPayload the id is valid: the packet needs a verdict.
func parsePacket(body []byte) (id uint32, pkt []byte, err error) {
	if len(body) < nfgenLen {
		return 0, nil, errShort
	}
	b := body[nfgenLen:]
	var haveID bool
	capLen := -1
	for len(b) >= nlaHdrLen {
		n := int(ne.Uint16(b))
		if n < nlaHdrLen || n > len(b) {
			return 0, nil, errShort
		}
		v := b[nlaHdrLen:n]
		switch ne.Uint16(b[2:]) & nlaTypeMask {
		case attrPacketHdr:
			if len(v) < 4 {
				return 0, nil, errShort
			}
			id, haveID = binary.BigEndian.Uint32(v), true
		case attrPayload:
			pkt = v
		case attrCapLen:
			if len(v) < 4 {
				return 0, nil, errShort
			}
			capLen = int(binary.BigEndian.Uint32(v))
		}
		a := align4(n)
		if a >= len(b) {
			break
		}
		b = b[a:]
	}
	if !haveID {
		return 0, nil, errNoPacket
	}
	if pkt == nil {
		return id, nil, errNoPayload
	}
	if capLen > len(pkt) {
		return id, pkt, errCut
	}
	return id, pkt, nil
}

// msgErrno returns the errno of an NLMSG_ERROR body: 0 for an
// acknowledgement, a positive errno for an error.
func msgErrno(body []byte) (int, bool) {
	if len(body) < 4 {
		return 0, false
	}
	return -int(int32(ne.Uint32(body))), true
}

// appendVerdict appends a verdict message: on packet id alone (batch false)
// or on every packet of the queue up to id (NFQNL_MSG_VERDICT_BATCH).
func appendVerdict(dst []byte, queue uint16, id uint32, accept, batch bool) []byte {
	typ := uint16(msgVerdict)
	if batch {
		typ = msgVerdictBatch
	}
	v := uint32(verdictDrop)
	if accept {
		v = verdictAccept
	}
	dst = appendMsgHdr(dst, verdictMsgLen, typ, nlmFRequest)
	dst = appendNfgen(dst, queue)
	dst = ne.AppendUint16(dst, nlaHdrLen+8)
	dst = ne.AppendUint16(dst, attrVerdictHdr)
	dst = binary.BigEndian.AppendUint32(dst, v)
	return binary.BigEndian.AppendUint32(dst, id)
}

func appendMsgHdr(dst []byte, n int, typ, flags uint16) []byte {
	dst = ne.AppendUint32(dst, uint32(n))
	dst = ne.AppendUint16(dst, typ)
	dst = ne.AppendUint16(dst, flags)
	dst = ne.AppendUint32(dst, 0)  // seq
	return ne.AppendUint32(dst, 0) // port id: the kernel's
}

// appendNfgen appends struct nfgenmsg: family AF_UNSPEC (a queue takes
// every family), version NFNETLINK_V0, the queue number (big endian).
func appendNfgen(dst []byte, queue uint16) []byte {
	dst = append(dst, 0, 0)
	return binary.BigEndian.AppendUint16(dst, queue)
}

func appendAttr(dst []byte, typ uint16, v ...byte) []byte {
	dst = ne.AppendUint16(dst, uint16(nlaHdrLen+len(v)))
	dst = ne.AppendUint16(dst, typ)
	dst = append(dst, v...)
	for len(dst)%4 != 0 {
		dst = append(dst, 0)
	}
	return dst
}

// configMsg builds an NFQNL_MSG_CONFIG message asking for an
// acknowledgement, with the given attributes (each already padded).
func configMsg(queue uint16, attrs ...[]byte) []byte {
	n := nlmsgHdrLen + nfgenLen
	for _, a := range attrs {
		n += len(a)
	}
	b := appendMsgHdr(make([]byte, 0, n), n, msgConfig, nlmFRequest|nlmFAck)
	b = appendNfgen(b, queue)
	for _, a := range attrs {
		b = append(b, a...)
	}
	return b
}

// cmdAttr is NFQA_CFG_CMD with command cmd.
func cmdAttr(cmd byte) []byte { return appendAttr(nil, attrCfgCmd, cmd, 0, 0, 0) }

// paramsAttr is NFQA_CFG_PARAMS: copy whole packets up to copyRange bytes.
func paramsAttr(copyRange uint32) []byte {
	v := binary.BigEndian.AppendUint32(nil, copyRange)
	return appendAttr(nil, attrCfgParams, append(v, copyPacket)...)
}

func be32Attr(typ uint16, v uint32) []byte {
	return appendAttr(nil, typ, binary.BigEndian.AppendUint32(nil, v)...)
}
